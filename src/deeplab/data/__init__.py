"""Datasets in their on-disk layouts, augmentation, and the LightningDataModule (no model code)."""
