"""Moves a collated batch to the device: images (B, C, H, W) in [-1, 1] and
class labels (B,)."""
import torch
from mmengine.model import BaseDataPreprocessor

from mmdistill.registry import MODELS


@MODELS.register_module()
class DiffusionDataPreprocessor(BaseDataPreprocessor):
    """Batch ``{'inputs': images, 'data_samples': labels}`` -> same keys on
    the model's device, images as float, labels as long."""

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        labels = data.get('data_samples')
        if isinstance(labels, (list, tuple)):
            labels = torch.as_tensor(labels, device=inputs.device)
        if labels is not None:
            labels = labels.long()
        return dict(inputs=inputs.float(), data_samples=labels)
