"""Normal, adversarial and VAFT training (seed-algorithms §7): loop, objectives, schedules, validation.

Example::

    from SpectrumAttackLib.training import TrainConfig, train
    config = TrainConfig(max_epochs=2, val_every=1, roi=(64, 64, 64), warmup_epochs=0, save_model_dir="runs/a",
                         save_checkpoint=True)
    result = train(model, train_loader, val_cases, config, device="cpu")
"""

from SpectrumAttackLib.training.config import TrainConfig, TrainingMode
from SpectrumAttackLib.training.loop import EpochRecord, TrainResult, train
from SpectrumAttackLib.training.objectives import frequency_consistency_loss, training_loss
from SpectrumAttackLib.training.schedules import LinearWarmupCosineAnnealingLR, cosine_anneal, make_optimizer
from SpectrumAttackLib.training.validation import ValidationResult, validate

__all__ = [
    "EpochRecord",
    "LinearWarmupCosineAnnealingLR",
    "TrainConfig",
    "TrainResult",
    "TrainingMode",
    "ValidationResult",
    "cosine_anneal",
    "frequency_consistency_loss",
    "make_optimizer",
    "train",
    "training_loss",
    "validate",
]
