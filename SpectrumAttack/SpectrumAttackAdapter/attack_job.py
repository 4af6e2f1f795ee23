"""The attack (Apply, ``logic.run``): in this process or through the SpectrumAttackCLI module."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from SpectrumAttackAdapter.arguments import EngineArguments, engine_arguments, run_engine
from SpectrumAttackAdapter.model_list import catalogue_names, class_dicts
from SpectrumAttackAdapter.results import SpectrumAttackResult, write_result
from SpectrumAttackAdapter.segmentations import reference_labels
from SpectrumAttackAdapter.volumes import volume_to_ijk

__all__ = ["run_in_process", "start_in_background"]


def run_in_process(scene: Any, input_volume: Any, arguments: EngineArguments, reference_segmentation: Any,
                   on_progress: Any, cancel: Callable[[], bool], show_result: bool) -> SpectrumAttackResult:
    """Attack ``input_volume`` in this process and add the result nodes (nothing is added when it fails)."""
    array, ijk_to_ras = volume_to_ijk(input_volume)
    loaded = arguments.load_model()
    arguments = dataclasses.replace(arguments, model=loaded)
    reference = None
    if reference_segmentation is not None:
        reference = reference_labels(scene, reference_segmentation, input_volume, class_dicts(loaded.entry.classes))
    result = run_engine(arguments, array, ijk_to_ras, reference_labels=reference, progress=on_progress,
                        cancel=cancel, labels_name="referenceSegmentation")
    output = write_result(scene, input_volume, result, arguments.attack)
    if show_result:
        from SpectrumAttackAdapter.layout import show_side_by_side

        show_side_by_side(input_volume, output)
    logging.info("SpectrumAttack: %s on %s in %.1f s", arguments.attack, input_volume.GetName(), result.seconds)
    return output


def start_in_background(scene: Any, input_volume: Any, cli_parameters: dict[str, Any], reference_segmentation: Any,
                        on_progress: Any, on_finished: Any, show_result: bool) -> Any:
    """Start the CLI module with ``cli_parameters`` (XML names, values as the front end holds them: the CLI
    process converts them, once); returns the started ``CLIJob``.

    Raises:
        ValueError: outside the application or without the CLI module (one message saying which).
    """
    from SpectrumAttackAdapter.clijob import CLIJob
    from SpectrumAttackAdapter.clirun import cli_module
    from SpectrumAttackAdapter.layout import show_side_by_side

    cli_module("spectrumattackcli", "SpectrumAttackCLI")
    reference = None
    if reference_segmentation is not None:
        model = cli_parameters["model"]
        if model in catalogue_names():
            from SpectrumAttackLib.models.catalogue import get_entry

            classes = get_entry(model).classes
        else:
            classes = engine_arguments(cli_parameters, strict=False).load_model().entry.classes
        reference = reference_labels(scene, reference_segmentation, input_volume, class_dicts(classes))

    def finished(result: SpectrumAttackResult | None, error: str | None) -> None:
        try:
            if result is not None and show_result:
                show_side_by_side(input_volume, result)
        except Exception:  # a layout problem must not keep the caller waiting (the button on "Cancel")
            logging.exception("SpectrumAttack: showing the result failed")
        finally:
            if on_finished is not None:
                on_finished(result, error)

    return CLIJob(scene, input_volume, cli_parameters, reference, cli_parameters["attack"], on_progress,
                  finished).start()
