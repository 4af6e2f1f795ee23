"""Build a MONAI bundle's ``network_def`` without running the bundle's code.

MONAI's ``ConfigParser`` evaluates ``$``-expressions as Python, imports any dotted ``_target_``, follows ``%``
macros into other files and honours ``_requires_``/``_mode_`` (``"debug"`` starts pdb). A downloaded bundle could
therefore run arbitrary code when its model is loaded. Here, unless the user says the bundle is trusted
(``--trust_model_code``, ``trust_code=True``), ``network_def`` is built by this module instead:

- ``_target_`` must name a network class of ``monai.networks.nets`` (``"UNet"``, ``"monai.networks.nets.UNet"``);
- every other value must be a literal (number, string, boolean, null, lists and mappings of them) or an ``@id``
  reference to a top-level entry of the config that is itself such a literal;
- no ``$`` expressions, ``%`` macros, nested ``_target_`` components or other ``_..._`` keys.

Anything else is refused with one message naming the offending entry and ``--trust_model_code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

__all__ = ["build_network_safely"]

_NETS_MODULE = "monai.networks.nets"


def _refuse(where: str, what: str) -> ValueError:
    return ValueError(
        f"model bundle network_def must use only MONAI network classes and literal values unless --trust_model_code "
        f"(trust_code=True) is given, got {what} at {where} (loading it would run the bundle's code)."
    )


def _network_class(target: Any, where: str) -> type[nn.Module]:
    import monai.networks.nets as nets

    if not isinstance(target, str):
        raise _refuse(where, f"_target_ {target!r}")
    module, _, name = target.rpartition(".")
    cls = getattr(nets, name, None)
    allowed_module = module in ("", _NETS_MODULE) or module.startswith(f"{_NETS_MODULE}.")
    if not allowed_module or not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise _refuse(where, f"_target_ {target!r} (not a class of {_NETS_MODULE})")
    return cls


def _literal(value: Any, config: Mapping[str, Any], where: str, depth: int = 0) -> Any:
    """``value`` with ``@id`` references replaced by their literal values; raises on anything executable."""
    if depth > 16:
        raise _refuse(where, "references nested more than 16 deep")
    if isinstance(value, str):
        if value.startswith("@"):
            key = value[1:]
            if key not in config:
                raise _refuse(where, f"the reference {value!r} (only top-level entries holding literals)")
            return _literal(config[key], config, f"{where} -> {value}", depth + 1)
        if value.startswith(("$", "%")):
            shown = value if len(value) <= 60 else value[:57] + "..."
            raise _refuse(where, f"the {'expression' if value[0] == '$' else 'macro'} {shown!r}")
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, list):
        return [_literal(v, config, f"{where}[{i}]", depth) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        special = [k for k in value if isinstance(k, str) and k.startswith("_") and k.endswith("_")]
        if special:
            raise _refuse(where, f"the component key {special[0]!r}")
        return {k: _literal(v, config, f"{where}.{k}", depth) for k, v in value.items()}
    raise _refuse(where, f"a value of type {type(value).__name__}")


def build_network_safely(config: Mapping[str, Any]) -> nn.Module:
    """Instantiate ``config["network_def"]`` as described in the module docstring.

    Args:
        config: the bundle's parsed inference config (JSON/YAML), with a ``network_def`` mapping.

    Raises:
        ValueError: an expression, macro, reference to a non-literal, nested component or a ``_target_`` outside
            ``monai.networks.nets`` (message names ``--trust_model_code``); or the class refuses the arguments.
    """
    network = config.get("network_def")
    if isinstance(network, str) and network.startswith("@"):
        network = config.get(network[1:])
    if not isinstance(network, Mapping):
        raise _refuse("network_def", f"a {type(network).__name__} instead of a component mapping")
    extra = [k for k in network if isinstance(k, str) and k.startswith("_") and k.endswith("_") and k != "_target_"]
    if extra:
        raise _refuse("network_def", f"the component key {extra[0]!r}")
    cls = _network_class(network.get("_target_"), "network_def._target_")
    arguments = {k: _literal(v, config, f"network_def.{k}") for k, v in network.items() if k != "_target_"}
    try:
        return cls(**arguments)
    except Exception as exc:  # the network's own argument checks
        raise ValueError(f"network_def must build {cls.__name__} with its arguments, got error {exc}") from None
