""""Why is my run below the paper?": the resolved config against the DeepLabV3+ paper's protocol,
one line per departure known to cost mIoU. It never stops a run (check.deviations=false silences it).

The protocol (DeepLabV3 Sec. 4, DeepLabV3+ Sec. 4): ImageNet-pretrained encoder; VOC trained on
train_aug (10,582 images); 513 crops; batch norm fine-tuned at output stride 16 with 16 images a
batch-norm batch, then frozen for output stride 8; ASPP rates (6, 12, 18) at OS16 and (12, 24, 36)
at OS8."""

from omegaconf import DictConfig

PAPER_BN_BATCH = 16
PAPER_RATES = {16: [6, 12, 18], 8: [12, 24, 36]}
PAPER_MIN_CROP = 321  # the smallest crop the DeepLab papers train with (Cityscapes and VOC use 513 / 769)


def _bn_trained(cfg: DictConfig) -> bool:
    """Some batch norm updates its statistics: no stage of the schedule freezes every one."""
    stages = cfg.finetune.get("stages") or []
    return not stages or any(stage.get("freeze_bn", False) != "all" for stage in stages)


def _bn_batch(cfg: DictConfig) -> tuple[int, str]:
    """Images each batch norm layer normalises over, and how that number comes about."""
    trainer, batch = cfg.trainer, cfg.data.batch_size
    if not trainer.get("sync_batchnorm"):
        return batch, f"data.batch_size={batch} a process, trainer.sync_batchnorm=false"
    devices = trainer.get("devices", 1)
    processes = (devices if isinstance(devices, int) else len(devices)) * trainer.get("num_nodes", 1)
    return batch * processes, f"data.batch_size={batch} x {processes} processes with trainer.sync_batchnorm"


def _is_synthetic(cfg: DictConfig) -> bool:
    prepare = cfg.data.get("prepare")
    # the generated sets: data=synthetic, synthetic_binary, synthetic_multilabel (quick starts, not the paper's data)
    return bool(prepare) and str(prepare.get("_target_", "")).split(".")[-1].startswith("make_synthetic_")


def _is_voc(cfg: DictConfig, choices: dict) -> bool:
    if choices.get("data"):
        return choices["data"] == "voc"
    return str(cfg.data.dataset.get("_target_", "")).endswith("VOCSegmentation") and not _is_synthetic(cfg)


def _who_sets_rates(choices: dict) -> str:
    recipe = choices.get("recipe")
    if recipe and recipe != "paper":
        return f"recipe={recipe} sets them; recipe=paper gives the output stride's own"
    return "model.aspp.rates sets them; left as train.yaml has it, they follow the output stride"


def deviations(cfg: DictConfig, choices: dict | None = None) -> list[str]:
    """The departures from the paper's protocol that cost mIoU, one sentence each (none for the
    synthetic set: it has no paper figure to fall short of)."""
    choices = choices or {}
    if _is_synthetic(cfg):
        return []
    found = []
    model, data = cfg.model, cfg.data
    bn_trained = _bn_trained(cfg)
    images, how = _bn_batch(cfg)
    if bn_trained and images < PAPER_BN_BATCH:
        found.append(f"batch norm trains on {images} images a batch ({how}); the paper fine-tunes it on "
                     f"{PAPER_BN_BATCH}: raise data.batch_size, set trainer.sync_batchnorm=true over GPUs, or "
                     "freeze it (finetune freeze_bn)")
    if model.backbone.weights is None and not model.get("init_from"):
        found.append("the encoder starts from random weights (model.backbone.weights=null); the paper fine-tunes "
                     "ImageNet weights: model.backbone.weights=imagenet")
    if _is_voc(cfg, choices):
        found.append(f"data=voc trains on VOC's own {data.train_split} split (1,464 images); the paper trains on "
                     "train_aug (10,582 with SBD): data=voc_aug")
    rates = PAPER_RATES.get(model.output_stride)
    if rates is not None and list(model.aspp.rates) != rates:
        found.append(f"ASPP rates {list(model.aspp.rates)} at output stride {model.output_stride}; the paper's are "
                     f"{rates} ({_who_sets_rates(choices)})")
    crop = data.crop_size if isinstance(data.crop_size, int) else min(data.crop_size)
    if crop < PAPER_MIN_CROP:
        found.append(f"data.crop_size={crop} is smaller than {PAPER_MIN_CROP}; the paper trains on 513 crops "
                     "(ASPP's image pooling and large rates need the context)")
    if model.output_stride == 8 and bn_trained:
        found.append("batch norm trains at output stride 8; the paper trains it at 16 and freezes it for the OS8 "
                     "stage (finetune=paper)")
    eval_os = cfg.eval.get("output_stride")
    if eval_os and eval_os != model.output_stride and choices.get("eval") != "paper":
        found.append(f"validation runs at output stride {eval_os} (eval.output_stride), training at "
                     f"{model.output_stride}: val/mIoU compares with the paper's rows evaluated at {eval_os}")
    return found
