"""Sinusoidal features for scalars (time, guidance weight) and the guidance
embedding; defined in :mod:`.portable` (torch + diffusers only)."""
from .portable import GuidanceEmbedding, sinusoidal_embedding

__all__ = ['GuidanceEmbedding', 'sinusoidal_embedding']
