"""saelab: the helper module of a Jupyter-first course on sparse autoencoders.

The names most notebooks use are here; everything else lives in one module per idea
(models, sae, pretrained, features, patching and sae_patching (notebook 03), steering, activations, training,
evaluation, metrics, ...).
"""
from saelab.activations import ActivationSource
from saelab.course import load_world
from saelab.evaluation import evaluate_sae, lm_loss_recovered, sae_metrics
from saelab.features import collect_latents, contrast_latents, logit_effects, neuronpedia_url, top_features
from saelab.models import load_model, to_tokens
from saelab.patching import logit_diff_metric, patch_residual
from saelab.pretrained import load_openai_sae, load_sae
from saelab.sae import SAE, load_sae_file
from saelab.sae_patching import latent_ablation, latent_attribution, latent_patching
from saelab.steering import generate, scale_sweep, steer, steering_vector
from saelab.training import History, train_sae

__all__ = [
    "ActivationSource", "History", "SAE", "collect_latents", "contrast_latents", "evaluate_sae", "generate",
    "latent_ablation", "latent_attribution", "latent_patching", "lm_loss_recovered", "load_model",
    "load_openai_sae", "load_sae", "load_sae_file", "load_world", "logit_diff_metric", "logit_effects",
    "neuronpedia_url", "patch_residual", "sae_metrics", "scale_sweep", "steer", "steering_vector",
    "to_tokens", "top_features", "train_sae",
]
__version__ = "0.1.0"
