"""The OmegaConf resolvers the configs in deeplab/conf/ use, registered when `deeplab` is imported, so
that a config composed by train.py, by Hydra's compose API or read back from a run resolves the
same way."""

from omegaconf import OmegaConf


def _aspp_rates(output_stride):
    from deeplab.model.aspp import paper_rates  # the rule lives with the model; imported when resolved

    # a ListConfig, not a list: OmegaConf.resolve (--cfg job --resolve) writes it in place of the node
    return OmegaConf.create(paper_rates(output_stride))


def register() -> None:
    # `${aspp_rates:${model.output_stride}}`: the paper's ASPP rates for an output stride
    if not OmegaConf.has_resolver("aspp_rates"):
        OmegaConf.register_new_resolver("aspp_rates", _aspp_rates)
