"""The digits experiments: the demo and latent-pipeline reports, the digits
VAE recipe and the model-zoo evaluation. Run through ``tools/demo.py``,
``tools/latent_digits.py`` and ``tools/eval_digits_zoo.py``."""
