"""The U-Net of the Noise2Noise paper and the layers it is built from."""
