"""Network blocks shared by the policies, one file each: MLP, the temporal U-Net of Diffusion
Policy, sinusoidal embeddings, and observation encoders (the seam for image encoders)."""
