"""Volumes on disk with their geometry (NIfTI, NRRD): IJK arrays plus IJK→RAS affines."""

from SpectrumAttackLib.io.volumes import SUFFIXES, Volume, read_volume, volume_format, write_volume

__all__ = ["SUFFIXES", "Volume", "read_volume", "volume_format", "write_volume"]
