"""Networks of the kit: the shape VAE (and, later, SPADE, the discriminator, the U-Net)."""
