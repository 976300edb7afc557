"""CFG teachers around pretrained diffusers networks (pixel or latent).

A latent teacher is a :class:`~mmdistill.models.CFGDiffusion` whose denoiser
is a diffusers adapter, whose ``image_shape`` is the latent shape and whose
data preprocessor is a :class:`LatentDataPreprocessor` (VAE encode on the
way in, ``decode`` in :meth:`sample`).
"""
from mmdistill.registry import MODELS
from ..cfg_diffusion import CFGDiffusion
from ..conditions import TensorConditions, build_condition_provider


@MODELS.register_module()
class DiffusersCFGDiffusion(CFGDiffusion):
    """A CFG diffusion model whose network is a diffusers adapter
    (``DiffusersUNet2D``, ``DiffusersDiT``, ``DiffusersTextUNet``).

    ``schedule`` and ``prediction_type`` default to the adapter's (read from
    the model folder's scheduler config), ``num_classes`` to the adapter's,
    ``image_shape`` to (in_channels, sample_size, sample_size) of the
    network (the latent shape for DiT / Stable Diffusion). Pretrained
    teachers are used frozen, so EMA is off by default.
    """

    def __init__(self, denoiser, num_classes=None, image_shape=None,
                 schedule=None, prediction_type=None, p_uncond=0.0,
                 ema=None, default_sample=dict(steps=50, guidance=3.0,
                                               sampler='ddim'), **kwargs):
        super().__init__(denoiser, num_classes=num_classes or 0,
                         image_shape=image_shape or (0, ),
                         schedule=schedule, prediction_type=prediction_type
                         or 'v', p_uncond=p_uncond, ema=ema,
                         default_sample=default_sample, **kwargs)
        net = self.net
        if schedule is None:
            self.schedule = net.schedule
        if prediction_type is None:
            self.prediction_type = net.prediction_type
        if num_classes is None:
            self.num_classes = net.num_classes
        if image_shape is None:
            size = net.model.config.sample_size
            size = (size, size) if isinstance(size, int) else tuple(size)
            self.image_shape = (net.in_channels, ) + size


@MODELS.register_module()
class TextCFGDiffusion(DiffusersCFGDiffusion):
    """Text-to-image CFG teacher (Stable Diffusion style).

    Conditions are prompt embeddings (B, L, D); the null condition is the
    empty prompt's embedding; the replacement condition of a sample is the
    prompt of another sample of the batch (a random caption of the data
    set). :meth:`sample` takes prompt strings or embeddings.
    """

    def condition_provider(self) -> TensorConditions:
        """Conditioning for prompts: null = the empty prompt's embedding,
        other (and random) = another caption of the batch."""
        return build_condition_provider(
            'text', data_preprocessor=self.data_preprocessor)
