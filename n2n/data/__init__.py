"""Data: sources that read what the user has, paired augmentation, and the LightningDataModule."""
