"""mmdistill's own networks (pretrained diffusers networks are in
:mod:`mmdistill.models.adapters`)."""
from .compact_unet import CompactUNet
from .embeddings import GuidanceEmbedding, sinusoidal_embedding

__all__ = ['CompactUNet', 'GuidanceEmbedding', 'sinusoidal_embedding']
