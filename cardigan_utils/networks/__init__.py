"""Networks of the kit: the shape VAE, the SPADE generator and style encoder, the multi-scale
discriminator, and the U-Net (MONAI's). Training them is each stage's job (shapes, images, segmentation)."""
