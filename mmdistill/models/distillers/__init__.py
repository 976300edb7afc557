"""Stage 1 (guidance distillation) and stage 2 (progressive distillation),
the frozen teacher and conditioning replacement."""
from .conditioning import (ClassLabelConditions, ConditionReplacer,
                           TensorConditions)
from .guidance_distiller import GuidanceDistiller
from .progressive_distiller import ProgressiveDistiller
from .teacher import TrainableOptimWrapperConstructor

__all__ = [
    'ClassLabelConditions', 'ConditionReplacer', 'GuidanceDistiller',
    'ProgressiveDistiller', 'TensorConditions',
    'TrainableOptimWrapperConstructor'
]
