"""MONAI UNet, UNETR, Swin-UNETR and SegResNet with the seed's (SegResNet: the peer benchmark's) constructor settings.

seed-algorithms §8: the seed's ``UNETR(pos_embed=...)`` is ``proj_type`` today, and ``SwinUNETR`` no longer takes
``img_size`` (the tile size is only checked here, against the network's down-sampling).

Example:
    >>> model = build_model("unet", 14, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=1)
    >>> model = build_model("swin-unetr", 14, feature_size=12, roi=(64, 64, 64))
    >>> model = build_model("segresnet", 14)  # init_filters 32, blocks (1, 2, 2, 4) down and (1, 1, 1) up

SegResNet (Myronenko, "3D MRI brain tumor segmentation using autoencoder regularization", BrainLes 2018; MONAI's
``SegResNet`` without the VAE branch) is built as the robustness benchmark of Malik et al. (BMVC 2024, repository
HashmatShadab/Robustness-of-Volumetric-Medical-Segmentation-Models, ``load_surrogate_models.py``):
``blocks_down=(1, 2, 2, 4)``, ``blocks_up=(1, 1, 1)``, ``init_filters=32``, ``dropout_prob`` = ``dropout_rate``;
MONAI's defaults otherwise (group normalisation of 8 groups, ReLU, non-trainable up-sampling).
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import UNETR, SegResNet, SwinUNETR, UNet
from torch import nn

from SpectrumAttackLib.checks import check_choice, check_int, check_range
from SpectrumAttackLib.models.catalogue import ARCHITECTURES

__all__ = ["ARCHITECTURES", "SEED_UNET_CHANNELS", "SEED_UNET_STRIDES", "build_model"]

#: The seed's UNet (saa repository): 5 levels.
SEED_UNET_CHANNELS = (32, 64, 128, 256, 512)
SEED_UNET_STRIDES = (2, 2, 2, 2)
_UNETR_PATCH = 16  # UNETR's ViT uses 16³ patches
_SWIN_FACTOR = 32  # Swin-UNETR halves the resolution 5 times
_SEGRESNET_FACTOR = 8  # SegResNet halves the resolution 3 times
#: SegResNet as built by Malik et al. (BMVC 2024) for their benchmark.
SEGRESNET_BLOCKS_DOWN = (1, 2, 2, 4)
SEGRESNET_BLOCKS_UP = (1, 1, 1)


def _tuple(name: str, value: Sequence[int] | int, length: int) -> tuple[int, ...]:
    values = (value,) * length if isinstance(value, int) else tuple(value)
    if len(values) != length or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be {length} positive integers, got {value!r}.")
    return values


def build_model(
    architecture: str,
    num_classes: int,
    *,
    in_channels: int = 1,
    roi: Sequence[int] | int = (96, 96, 96),
    feature_size: int = 16,
    hidden_size: int = 768,
    mlp_dim: int = 3072,
    num_heads: int = 12,
    pos_embed: str = "perceptron",
    norm_name: str = "instance",
    res_block: bool = True,
    conv_block: bool = True,
    dropout_rate: float = 0.0,
    dropout_path_rate: float = 0.0,
    use_checkpoint: bool = False,
    spatial_dims: int = 3,
    channels: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    num_res_units: int = 2,
    proj_type: str | None = None,
    img_size: Sequence[int] | int | None = None,
    init_filters: int = 32,
) -> nn.Module:
    """Build a segmentation network with the seed's settings (seed-algorithms §8), in training mode, on the CPU.

    Args:
        architecture: the seed's ``--model_name``: ``"unet"``, ``"unet-r"`` or ``"swin-unetr"``, or ``"segresnet"``.
        num_classes: output channels, background included (``--out_channels``); >= 1.
        in_channels: input channels. Default 1.
        roi: tile size ``(H, W, D)`` in voxels. UNETR's position embeddings are built for it (multiples of 16);
            Swin-UNETR needs multiples of 32, at least 64. Unused by UNet. Default (96, 96, 96).
        feature_size: UNETR / Swin-UNETR base width; a multiple of 12 for Swin-UNETR. Default 16.
        hidden_size, mlp_dim, num_heads: UNETR's ViT; ``hidden_size`` divisible by ``num_heads``.
            Defaults 768, 3072, 12 (ViT-B).
        pos_embed: UNETR patch embedding, ``"perceptron"`` or ``"conv"`` (MONAI's ``proj_type``). Default
            ``"perceptron"``.
        norm_name: UNETR / Swin-UNETR decoder normalisation. Default ``"instance"``.
        res_block, conv_block: UNETR decoder options. Default True.
        dropout_rate: dropout (UNet, UNETR, Swin-UNETR ``drop_rate``) in [0, 1]. Default 0.
        dropout_path_rate: Swin-UNETR stochastic depth in [0, 1]. Default 0.
        use_checkpoint: Swin-UNETR gradient checkpointing. Default False.
        spatial_dims: 2 or 3. Default 3.
        channels, strides: UNet levels; default the seed's (32, 64, 128, 256, 512) and (2, 2, 2, 2);
            ``len(strides) == len(channels) - 1``.
        num_res_units: UNet residual units per level. Default 2 (the seed's).
        proj_type, img_size: MONAI's current names of ``pos_embed`` and ``roi``, accepted as aliases.
        init_filters: SegResNet's first width (doubled at each of its 3 down-samplings), a multiple of 8. Default 32
            (the peer's).

    Returns:
        The MONAI network; maps ``[B, in_channels, H, W, D]`` to logits ``[B, num_classes, H, W, D]``.

    Raises:
        ValueError: unknown architecture, bad sizes (each message names the parameter).
    """
    check_choice("architecture", architecture, ARCHITECTURES)
    num_classes = check_int("num_classes", num_classes, 1)
    in_channels = check_int("in_channels", in_channels, 1)
    spatial_dims = check_int("spatial_dims", spatial_dims, 2, 3)
    check_range("dropout_rate", dropout_rate, 0.0, 1.0)
    if proj_type is not None:
        if pos_embed not in ("perceptron", proj_type):
            raise ValueError(f"pos_embed and proj_type name one setting; got {pos_embed!r} and {proj_type!r}.")
        pos_embed = proj_type
    if img_size is not None:
        roi = img_size

    if architecture == "unet":
        channels = SEED_UNET_CHANNELS if channels is None else channels
        strides = SEED_UNET_STRIDES if strides is None else strides
        channels = _tuple("channels", channels, len(channels))
        strides = _tuple("strides", strides, len(strides))
        if len(channels) < 2 or len(strides) != len(channels) - 1:
            raise ValueError(
                f"strides must have len(channels) - 1 = {len(channels) - 1} entries, got {strides!r} "
                f"for channels {channels!r}."
            )
        return UNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=num_classes,
            channels=channels,
            strides=strides,
            num_res_units=check_int("num_res_units", num_res_units, 0),
            dropout=dropout_rate,
        )

    roi = _tuple("roi", roi, spatial_dims)
    if architecture == "segresnet":
        if any(r % _SEGRESNET_FACTOR for r in roi):
            raise ValueError(f"roi must be multiples of {_SEGRESNET_FACTOR} for segresnet (3 down-samplings), "
                             f"got {roi!r}.")
        if isinstance(init_filters, int) and init_filters % 8:
            raise ValueError(f"init_filters must be a multiple of 8 for segresnet (group normalisation of 8 groups), "
                             f"got {init_filters!r}.")
        return SegResNet(spatial_dims=spatial_dims, init_filters=check_int("init_filters", init_filters, 8),
                         in_channels=in_channels, out_channels=num_classes, dropout_prob=dropout_rate,
                         blocks_down=SEGRESNET_BLOCKS_DOWN, blocks_up=SEGRESNET_BLOCKS_UP)
    feature_size = check_int("feature_size", feature_size, 1)
    if architecture == "unet-r":
        if spatial_dims != 3:
            raise ValueError(f"spatial_dims must be 3 for unet-r, got {spatial_dims!r}.")
        check_choice("pos_embed", pos_embed, ("perceptron", "conv"))
        hidden_size = check_int("hidden_size", hidden_size, 1)
        num_heads = check_int("num_heads", num_heads, 1)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size must be divisible by num_heads ({num_heads}), got {hidden_size!r}.")
        if any(r % _UNETR_PATCH for r in roi):
            raise ValueError(f"roi must be multiples of {_UNETR_PATCH} for unet-r (16³ ViT patches), got {roi!r}.")
        return UNETR(
            in_channels=in_channels,
            out_channels=num_classes,
            img_size=roi,
            feature_size=feature_size,
            hidden_size=hidden_size,
            mlp_dim=check_int("mlp_dim", mlp_dim, 1),
            num_heads=num_heads,
            proj_type=pos_embed,
            norm_name=norm_name,
            conv_block=bool(conv_block),
            res_block=bool(res_block),
            dropout_rate=dropout_rate,
            spatial_dims=spatial_dims,
        )

    if feature_size % 12:
        raise ValueError(f"feature_size must be a multiple of 12 for swin-unetr, got {feature_size!r}.")
    # At 32 voxels the bottleneck is 1 voxel wide and instance normalisation fails.
    if any(r % _SWIN_FACTOR or r < 2 * _SWIN_FACTOR for r in roi):
        raise ValueError(f"roi must be multiples of {_SWIN_FACTOR} and >= {2 * _SWIN_FACTOR} for swin-unetr, "
                         f"got {roi!r}.")  # fmt: skip
    return SwinUNETR(
        in_channels=in_channels,
        out_channels=num_classes,
        feature_size=feature_size,
        norm_name=norm_name,
        drop_rate=dropout_rate,
        attn_drop_rate=0.0,
        dropout_path_rate=check_range("dropout_path_rate", dropout_path_rate, 0.0, 1.0),
        use_checkpoint=bool(use_checkpoint),
        spatial_dims=spatial_dims,
    )
