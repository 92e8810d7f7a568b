"""Network blocks shared by the policies: MLP, temporal U-Net, embeddings, observation encoders."""
