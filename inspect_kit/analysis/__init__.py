"""Pure computation on stores and arrays: embeddings, feature visualization, weights, latent probing, probes. Nothing here plots."""
