"""The kinds of job a server runs. Each hands its request to the engine function the command line uses, so the
arguments are checked once, by the engine, with its words; only the request's shape (which keys exist) is
checked here, at submission.

- ``attack``: :func:`~SpectrumAttackLib.workflows.single.attack_single_volume` on one uploaded volume; results:
  the adversarial volume, the perturbation, both segmentations (wire bodies) and ``result.json`` (metrics,
  classes, attack configuration, seconds, the volumes' wire meta).
- ``audit``: :func:`~SpectrumAttackLib.workflows.robustness.audit` on one uploaded volume and one or several
  models; results: the audit's own files (``audit.json``, ``audit.csv``, ``curves.png``, ``report.html``,
  ``manifest.json``).

A new kind (fine-tuning, ``harden``) is one more :class:`JobKind` in :data:`KINDS`: a ``check`` of its request's
shape and a ``run`` writing its results with the staged writer.

Request shapes (JSON)::

    {"kind": "attack", "image": VOLUME_ID, "labels": VOLUME_ID | null, "model": MODEL, "attack": "saa",
     "params": {...}, "settings": {"seed", "precision", "attack_mode", "overlap", "tile_batch_size",
     "metrics_preset"}}
    {"kind": "audit", "image": VOLUME_ID, "labels": VOLUME_ID | null, "models": [MODEL, ...] | {label: MODEL},
     "grid": "quick" | {...}, "settings": {"seed", "precision", "metrics_preset", "attack_mode", "overlap",
     "tile_batch_size", "levels"}}

    MODEL = "catalogue-name" | {"weights": WEIGHTS_ID, "architecture": ..., "num_classes": ...,
                                 "arguments": {build_model keywords}, "preprocessing": {Preprocessing fields}}
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from SpectrumAttackLib.checks import check_choice
from SpectrumAttackLib.progress import ProgressCallback
from SpectrumAttackLib.server.store import Store, write_json

__all__ = ["ATTACK_FILES", "KINDS", "JobContext", "JobKind", "ModelCache"]

#: what an attack job's result folder holds (volumes as wire bodies, ``result.json`` describing them).
ATTACK_VOLUMES = ("adversarial", "perturbation", "seg_clean", "seg_adv")
ATTACK_FILES = (*(f"{name}.vol" for name in ATTACK_VOLUMES), "result.json")
_ATTACK_SETTINGS = ("seed", "precision", "attack_mode", "overlap", "tile_batch_size", "metrics_preset")
_AUDIT_SETTINGS = ("seed", "precision", "metrics_preset", "attack_mode", "overlap", "tile_batch_size", "levels")
_MODEL_KEYS = ("weights", "architecture", "num_classes", "arguments", "preprocessing")


class ModelCache:
    """Models loaded by the worker, the most recent few kept on the device (only the worker thread uses it).

    Models come from the server's catalogue (by name) or from an uploaded weights file: a state-dict checkpoint
    read with ``torch.load(weights_only=True)``; TorchScript files carry code and are refused unless the server
    runs with ``--trust-model-code``. Paths on the server are never accepted.
    """

    def __init__(self, store: Store, device: str, trust_model_code: bool, size: int = 2) -> None:
        self.store, self.device, self.trust_model_code, self.size = store, device, trust_model_code, size
        self._loaded: OrderedDict[str, Any] = OrderedDict()

    def load(self, owner: str, spec: Any, name: str = "model") -> Any:
        """A ``LoadedModel`` for a model spec of a request (see the module docstring)."""
        key = json.dumps([owner if isinstance(spec, Mapping) else "", spec], sort_keys=True, default=str)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        loaded = self._load(owner, spec, name)
        self._loaded[key] = loaded
        while len(self._loaded) > self.size:
            self._loaded.popitem(last=False)
        return loaded

    def _load(self, owner: str, spec: Any, name: str) -> Any:
        from SpectrumAttackLib.models import load_model
        from SpectrumAttackLib.models.catalogue import Preprocessing, load_catalogue
        from SpectrumAttackLib.models.checkpoints import is_torchscript

        if isinstance(spec, str):
            check_choice(name, spec, [entry.name for entry in load_catalogue()])
            return load_model(spec, self.device)
        path = self.store.weights_path(owner, spec["weights"])
        self.store.touch(spec["weights"])
        if is_torchscript(path) and not self.trust_model_code:
            raise ValueError(f"{name} weights must be a state-dict checkpoint: TorchScript files carry code and this "
                             "server was started without --trust-model-code, got a TorchScript file.")
        preprocessing = spec.get("preprocessing")
        if preprocessing is not None:
            try:
                preprocessing = Preprocessing(**{k: tuple(v) if isinstance(v, list) else v
                                                 for k, v in preprocessing.items()})
            except TypeError as error:
                raise ValueError(f"{name} preprocessing must use the fields of Preprocessing, got {error}.") from None
        return load_model(path, self.device, architecture=spec.get("architecture"),
                          num_classes=spec.get("num_classes"), preprocessing=preprocessing,
                          **dict(spec.get("arguments") or {}))


@dataclass
class JobContext:
    """What a running job gets from the worker.

    Attributes:
        owner: the token's owner (uploads are looked up in its name).
        request: the checked request.
        store: the data folder; result: the folder its results go to (it must not exist before the commit).
        models: the worker's model cache.
        progress: report ``Progress(done, total, stage, message)``.
        should_stop: True once the job was cancelled; check it between steps.
    """

    owner: str
    request: dict[str, Any]
    store: Store
    result: Path
    models: ModelCache
    progress: ProgressCallback
    should_stop: Callable[[], bool]


@dataclass(frozen=True)
class JobKind:
    """One kind of job: ``check(request)`` raises ValueError on a request of the wrong shape (at submission);
    ``run(context)`` does the work and returns the names of the result files."""

    name: str
    check: Callable[[Mapping[str, Any]], None]
    run: Callable[[JobContext], list[str]]


def _check_keys(name: str, given: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(given, Mapping):
        raise ValueError(f"{name} must be a JSON object, got {given!r}.")
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"{name} must hold only {', '.join(allowed)}, got {', '.join(unknown)}.")


def _check_model(name: str, spec: Any) -> None:
    if isinstance(spec, str):
        return
    _check_keys(name, spec, _MODEL_KEYS)
    if not isinstance(spec.get("weights"), str):
        raise ValueError(f"{name} must be a catalogue name or an object with the id of uploaded weights, got {spec!r}.")


def _check_common(request: Mapping[str, Any], keys: tuple[str, ...], settings: tuple[str, ...]) -> None:
    _check_keys("request", request, ("kind", "image", "labels", *keys, "settings"))
    if not isinstance(request.get("image"), str):
        raise ValueError(f"image must be the id of an uploaded volume, got {request.get('image')!r}.")
    if request.get("labels") is not None and not isinstance(request["labels"], str):
        raise ValueError(f"labels must be the id of an uploaded volume or null, got {request['labels']!r}.")
    _check_keys("settings", request.get("settings") or {}, settings)


def _check_attack(request: Mapping[str, Any]) -> None:
    from SpectrumAttackLib import attacks

    _check_common(request, ("model", "attack", "params"), _ATTACK_SETTINGS)
    check_choice("attack", request.get("attack"), attacks.available())
    _check_model("model", request.get("model"))
    if not isinstance(request.get("params") or {}, Mapping):
        raise ValueError(f"params must be a JSON object of attack parameters, got {request.get('params')!r}.")


def _inputs(context: JobContext) -> tuple[Any, Any, Any, str, str]:
    """``(image array, affine, labels array or None, image name, labels name)``; the names are those the client
    gave its uploads (``"inputVolume"``, ``"referenceSegmentation"``...), used in the engine's messages."""
    array, affine, name = context.store.volume(context.owner, context.request["image"])
    context.store.touch(context.request["image"])
    labels, labels_name = None, "labels"
    if context.request.get("labels"):
        labels, _, labels_name = context.store.volume(context.owner, context.request["labels"])
        context.store.touch(context.request["labels"])
    return array, affine, labels, name, labels_name


def _run_attack(context: JobContext) -> list[str]:
    from SpectrumAttackLib.pipeline.staging import StagedOutput
    from SpectrumAttackLib.remote.protocol import encode_volume
    from SpectrumAttackLib.workflows.single import attack_single_volume

    request = context.request
    array, affine, labels, image_name, labels_name = _inputs(context)
    model = context.models.load(context.owner, request["model"])
    result = attack_single_volume((array, affine), model=model, attack=request["attack"],
                                  params=dict(request.get("params") or {}), reference_labels=labels,
                                  progress=context.progress, cancel=context.should_stop, image_name=image_name,
                                  labels_name=labels_name, **dict(request.get("settings") or {}))
    with StagedOutput(context.result, "result", False, ATTACK_FILES, overwrite_flag=None) as out:
        metas = {}
        for name in ATTACK_VOLUMES:
            body, meta = encode_volume(getattr(result, name), affine, name=name)
            out.path(f"{name}.vol").write_bytes(body)
            metas[name] = meta
        write_json(out.path("result.json"), {
            "metrics": result.metrics, "classes": result.classes, "attack_config": result.attack_config,
            "seconds": result.seconds, "volumes": metas})
        out.commit()
    return list(ATTACK_FILES)


def _check_audit(request: Mapping[str, Any]) -> None:
    from SpectrumAttackLib.audit.grid import PRESETS, resolve_grid

    _check_common(request, ("models", "grid"), _AUDIT_SETTINGS)
    models = request.get("models")
    specs = list(models.values()) if isinstance(models, Mapping) else models
    if not isinstance(specs, list) or not specs:
        raise ValueError(f"models must be a non-empty list of models or an object label → model, got {models!r}.")
    for spec in specs:
        _check_model("models", spec)
    grid = request.get("grid", "quick")
    if not isinstance(grid, Mapping):  # a grid file would be a path on the server: presets or a grid object only
        check_choice("grid", grid, tuple(PRESETS))
    resolve_grid(grid)


def _run_audit(context: JobContext) -> list[str]:
    from SpectrumAttackLib.audit.outputs import AUDIT_RESULTS
    from SpectrumAttackLib.progress import Cancelled
    from SpectrumAttackLib.workflows.robustness import audit

    request = context.request
    array, affine, labels, name, _ = _inputs(context)
    given = request["models"]
    items = given.items() if isinstance(given, Mapping) else [(None, spec) for spec in given]
    models = {}
    for label, spec in items:
        loaded = context.models.load(context.owner, spec, "models")
        models[label or loaded.entry.name] = loaded

    def progress(report: Any) -> None:
        context.progress(report)
        if context.should_stop():
            raise Cancelled(f"cancelled after {report.done} of {report.total} cells")

    if context.should_stop():
        raise Cancelled("cancelled before the first cell")
    audit((array, affine), models=models, labels=labels, grid=request.get("grid", "quick"), output=context.result,
          name=name, progress=progress, **dict(request.get("settings") or {}))
    return [f for f in AUDIT_RESULTS if (context.result / f).is_file()]


#: job kinds by name.
KINDS: dict[str, JobKind] = {
    "attack": JobKind("attack", _check_attack, _run_attack),
    "audit": JobKind("audit", _check_audit, _run_audit),
}
