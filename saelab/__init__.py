"""saelab: the helper module of a Jupyter-first course on sparse autoencoders."""
from saelab.sae import SAE, load_sae_file

__all__ = ["SAE", "load_sae_file"]
__version__ = "0.1.0"
