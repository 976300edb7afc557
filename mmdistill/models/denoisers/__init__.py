from .compact_unet import CompactUNet
from .diffusers_adapters import DiffusersDiT, DiffusersTextUNet, DiffusersUNet2D  # noqa: E501
from .embeddings import GuidanceEmbedding, sinusoidal_embedding

__all__ = ['CompactUNet', 'GuidanceEmbedding', 'sinusoidal_embedding']
