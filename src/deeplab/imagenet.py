"""ImageNet's pixel statistics: what ImageNet-pretrained encoders expect their inputs normalised with."""

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
