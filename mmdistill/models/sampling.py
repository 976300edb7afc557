"""Sampling interface shared by the CFG teacher and the distilled students.

Every generative model in mmdistill exposes
``sample(labels, noise=None, steps=..., guidance=..., sampler=...,
generator=None, sample_model='ema')`` returning images in [-1, 1]; metrics,
``tools/sample.py`` and the demo only use this method.
"""
import torch

from mmdistill.diffusion import sample as run_sampler


class GuidedSamplingMixin:
    """Implements :meth:`sample` on top of :meth:`guided_x_fn`.

    The host defines ``schedule``, ``image_shape``, ``num_classes``,
    ``default_sample`` (dict of steps/guidance/sampler) and
    ``guided_x_fn(labels, guidance, sample_model) -> x_fn(z, t)``.
    """

    @torch.no_grad()
    def sample(self, labels, noise=None, steps=None, guidance=None,
               sampler=None, generator=None, sample_model='ema'):
        """Generate images of classes ``labels`` (B,).

        Args:
            labels (Tensor): class indices; ``num_classes`` means null.
            noise (Tensor, optional): z_1 (B, C, H, W); drawn if None.
            steps (int): sampler steps (network evaluations per image are
                steps x 2 for a CFG teacher, steps for a student).
            guidance (float | Tensor): w in Meng's convention
                (1 + w) x_c - w x_u; diffusers' guidance_scale = 1 + w.
            sampler (str): 'ddim', 'ddpm' or 'stochastic'.
            generator: torch.Generator or a list of them (one per sample).
            sample_model (str): 'ema' or 'orig' weights.
        """
        cfg = dict(self.default_sample)
        steps = steps if steps is not None else cfg.get('steps', 64)
        guidance = guidance if guidance is not None else cfg.get(
            'guidance', 0.0)
        sampler = sampler or cfg.get('sampler', 'ddim')
        device = self.device_of()
        labels = self.prepare_condition(labels, device)
        if noise is None:
            noise = torch.randn((len(labels), ) + tuple(self.image_shape),
                                generator=generator if not isinstance(
                                    generator, (list, tuple)) else None,
                                device=device)
        noise = noise.to(device)
        w = torch.as_tensor(guidance, dtype=noise.dtype, device=device)
        if w.ndim == 0:
            w = w.expand(len(labels))
        x_fn = self.guided_x_fn(labels, w, sample_model)
        return self.decode_samples(run_sampler(
            sampler, x_fn, noise, self.schedule, int(steps),
            generator=generator))

    def prepare_condition(self, labels, device):
        """Class indices -> long tensor; a float tensor (e.g. prompt
        embeddings) is kept; a list of strings is encoded by the data
        preprocessor's ``encode_condition`` (text models)."""
        if isinstance(labels, (list, tuple)) and labels and isinstance(
                labels[0], str):
            pre = getattr(self, 'data_preprocessor', None)
            if not hasattr(pre, 'encode_condition'):
                raise ValueError('this model takes class labels, not '
                                 'prompts')
            return pre.encode_condition(list(labels)).to(device)
        labels = torch.as_tensor(labels, device=device)
        return labels if labels.is_floating_point() else labels.long()

    def decode_samples(self, z):
        """Final z_0 -> images in [-1, 1]: clamped in pixel space, decoded
        by the data preprocessor's VAE (``decode``) in latent space."""
        decode = getattr(getattr(self, 'data_preprocessor', None), 'decode',
                         None)
        return decode(z) if decode is not None else z.clamp(-1, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        """mmengine's modes: 'loss' -> ``self.loss(images, labels)``,
        'predict' -> samples of the classes ``data_samples``, 'tensor' ->
        the inputs."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.sample(data_samples)
        if mode == 'tensor':
            return inputs
        raise ValueError(f'invalid mode {mode!r}')

    def device_of(self):
        return next(self.parameters()).device
