"""The shared part of every training scheme: how batches are cropped,
the learning-rate schedule, skipped batches, checkpoint saving and
selection, and the one evaluation path (per-utterance
``test_results.csv``, a summary table, enhanced wavs, figures).

How a model is applied lives in :mod:`speechbrain_remix.apply` (re-exported
here: ``normalize``, ``separate``), loading trained weights in
:mod:`speechbrain_remix.pretrained`, the metric sets in
:mod:`speechbrain_remix.metrics` and what is written for people in
:mod:`speechbrain_remix.reporting`.

A scheme subclasses :class:`EnhancementBrain` and implements
``compute_forward`` / ``compute_objectives`` for the TRAIN and VALID
stages and ``systems()`` for evaluation.
"""

import logging
import math
import os

import soundfile as sf
import speechbrain as sb
import torch

from speechbrain_remix import reporting
from speechbrain_remix.apply import (  # noqa: F401
    closest_output,
    normalize,
    separate,
)
from speechbrain_remix.data import DataError, random_crop
from speechbrain_remix.metrics import eval_metrics, metric_set  # noqa: F401
from speechbrain_remix.pretrained import load_pretrained  # noqa: F401
from speechbrain_remix.rng import CheckpointableGenerator
from speechbrain_remix.teacher import unwrap

logger = logging.getLogger(__name__)


class _SkipBatch(Exception):
    """Raised inside ``fit_batch`` to skip a batch (its loss carried)."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss


class EnhancementBrain(sb.Brain):
    """Base Brain: cropping, LR schedule, checkpoints and evaluation.

    Hyperparameters it reads: ``sample_rate``, ``crop_seconds``, ``seed``,
    ``lr``, ``lr_decay_every``, ``lr_decay_factor``, ``select_by``
    (``last`` or ``valid_loss``), ``save_enhanced`` (number of enhanced
    test files to write), ``output_folder``, ``train_logger``,
    ``eval_output`` (which output of a separation model is scored as the
    speech: ``first``, the speech output it was trained to fill, or
    ``closest``, the output closest to the clean reference, for models
    whose outputs have no fixed order; default :attr:`eval_output`).
    """

    #: audio columns the train/valid manifests must have
    train_requires = ("mix_wav",)
    #: the trained module, evaluated and written to test_results.csv
    model_key = "model"
    #: whether the trained model enhances (an SNR predictor does not)
    enhances = True
    #: the ``eval_output`` of a YAML that sets none
    eval_output = "first"

    @classmethod
    def train_columns(cls, hparams):
        """Audio columns the train/valid manifests need under ``hparams``."""
        return cls.train_requires

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.hparams.select_by not in ("last", "valid_loss",
                                          *self.metrics):
            raise ValueError(
                f"select_by: {self.hparams.select_by!r}; use 'last', "
                "'valid_loss' (the scheme's own validation loss) or a test "
                f"metric computed on the validation set: {self.metrics}"
            )
        rank = int(os.environ.get("RANK", 0))
        self.rng = CheckpointableGenerator(self.hparams.seed + rank)
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("rng", self.rng)
        self.skipped = {"train": 0, "valid": 0}  # non-finite batches
        self._batch_ids = []
        self.eval_output = getattr(self.hparams, "eval_output",
                                   type(self).eval_output)
        if self.eval_output not in ("first", "closest"):
            raise ValueError(
                f"eval_output: {self.eval_output!r}; use 'first' (the "
                "speech output) or 'closest' (the output closest to the "
                "clean reference, for outputs in no fixed order)")
        ms = self.metric_set
        if self.eval_output == "closest" and not ms.separated \
                and ms.reference != "clean":
            raise ValueError(
                "eval_output: closest needs clean speech in the test "
                "manifest, and eval_metrics: "
                f"{getattr(self.hparams, 'eval_metrics', None)} scores "
                "without it: use eval_metrics: enhancement, or "
                "eval_output: first")
        self.eval_system = None
        self.eval_systems = {}
        self.test_rows = []
        self.examples = {}
        # ``tensorboard: True`` in the YAML: epoch stats also for TensorBoard
        self.tensorboard = reporting.TensorBoardStats.from_hparams(
            self.hparams)

    # ------------------------------------------------------------------
    # data
    @property
    def crop_samples(self):
        return int(self.hparams.crop_seconds * self.hparams.sample_rate)

    def crop(self, batch, keys, stage):
        """Random crops in training, the first ``crop`` samples otherwise
        (so that validation is deterministic); returns tensors on device."""
        wavs = [getattr(batch, k).data for k in keys]
        lens = getattr(batch, keys[0]).lengths
        lengths = torch.round(lens * wavs[0].shape[1]).long()
        crop = self.crop_samples
        if stage == sb.Stage.TRAIN:
            out = random_crop(wavs, lengths, crop, self.rng.generator, batch.id)
        else:
            crop = min(crop, int(lengths.min()))
            out = [w[..., :crop] for w in wavs]
        return [w.to(self.device) for w in out]

    def min_batch_size(self):
        """Fewest mixtures a training or validation batch may hold (a scheme
        that remixes across the batch needs at least two)."""
        return 1

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-",
                        **loader_kwargs):
        """SpeechBrain's loaders, with no training or validation batch
        smaller than :meth:`min_batch_size`: the short last training batch
        of an epoch is dropped (the shuffle leaves out other mixtures every
        epoch), the short last validation batch is merged into the one
        before; a set or batch size too small for even one batch is a
        :class:`DataError` before training starts."""
        need = self.min_batch_size()
        if stage != sb.Stage.TEST and need > 1 and hasattr(dataset,
                                                           "__len__"):
            loader_kwargs = self._no_short_batches(dataset, stage, need,
                                                   dict(loader_kwargs))
        return super().make_dataloader(dataset, stage, ckpt_prefix,
                                       **loader_kwargs)

    def _no_short_batches(self, dataset, stage, need, loader_kwargs):
        size, n = loader_kwargs.get("batch_size", 1), len(dataset)
        what = f"{type(self).__name__} remixes mixtures across a batch and " \
            f"needs at least {need} in each"
        if size < need:
            raise DataError(f"batch_size {size}: {what}; set "
                            f"--batch_size={need} or more")
        manifest = getattr(self.hparams, f"{stage.name.lower()}_csv", "")
        if n < need:
            raise DataError(
                f"{manifest or stage.name}: {n} mixture(s); {what}; add "
                "recordings (prepare_folders keeps at least 2 for validation "
                "when the folder has 4 or more)")
        if stage == sb.Stage.TRAIN:
            world = torch.distributed.get_world_size() \
                if self.distributed_launch else 1
            rest = math.ceil(n / world) % size
            if 0 < rest < need:
                logger.info("%s: the last training batch of each epoch "
                            "would hold %d mixture(s): dropped (%s)",
                            manifest, rest, what)
                loader_kwargs["drop_last"] = True
            return loader_kwargs
        rest = n % size
        if 0 < rest < need:
            batches = [list(range(i, min(i + size, n)))
                       for i in range(0, n, size)]
            batches[-2].extend(batches.pop())
            logger.info("%s: the last validation batch would hold %d "
                        "mixture(s): merged into the one before (%s)",
                        manifest, rest, what)
            for key in ("batch_size", "shuffle", "drop_last", "sampler"):
                loader_kwargs.pop(key, None)
            loader_kwargs["batch_sampler"] = batches
        return loader_kwargs

    # ------------------------------------------------------------------
    # training bookkeeping
    def learning_rate(self, epoch):
        """Step decay after an optional hold, with a floor:
        ``max(lr_min, lr * factor ** ((epoch - 1 - hold) // every))``.

        RemixIT (Section III-D): 1e-3 halved every 6 epochs, no hold.
        Saijo & Ogawa (Sec. 3.4): 2e-4 held for 100 epochs, then times
        0.98 every 3 epochs down to 2e-5 (``lr_hold_epochs``, ``lr_min``).
        """
        every = getattr(self.hparams, "lr_decay_every", 0)
        if not every:
            return self.hparams.lr
        hold = getattr(self.hparams, "lr_hold_epochs", 0)
        decays = max(0, epoch - 1 - hold) // every
        lr = self.hparams.lr * self.hparams.lr_decay_factor ** decays
        return max(lr, getattr(self.hparams, "lr_min", 0.0))

    def draws(self, stage):
        """The generator of a batch's random draws (crops aside): the
        checkpointed one in training; in validation one seeded with
        ``seed`` afresh at every validation, so that its losses compare
        from epoch to epoch (and training's draws are untouched)."""
        if stage == sb.Stage.TRAIN:
            return self.rng.generator
        return self._valid_generator

    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.VALID:
            self._valid_generator = torch.Generator().manual_seed(
                self.hparams.seed)
        if stage in (sb.Stage.TRAIN, sb.Stage.VALID):
            self.skipped[stage.name.lower()] = 0
        if stage == sb.Stage.TRAIN and getattr(self, "optimizer", None):
            self.epoch_lr = self.learning_rate(self.epoch_in_stage(epoch))
            sb.nnet.schedulers.update_learning_rate(
                self.optimizer, self.epoch_lr)
        if stage == sb.Stage.TEST:
            self.test_rows = []

    def epoch_in_stage(self, epoch):
        """Epoch counted from the start of the current model (1-based)."""
        return epoch

    def warmup_learning_rate(self):
        """Linear warm-up over the first ``warmup_steps`` optimizer steps
        (Sec. 3.4 of Saijo & Ogawa: 0 to 2e-4 over 5000 steps)."""
        warmup = getattr(self.hparams, "warmup_steps", 0)
        if warmup and self.optimizer_step < warmup:
            sb.nnet.schedulers.update_learning_rate(
                self.optimizer,
                self.epoch_lr * (self.optimizer_step + 1) / warmup)

    def compute_objectives(self, predictions, batch, stage):
        if stage == sb.Stage.TEST:
            return self.test_objectives(predictions, batch)
        loss = self.training_objectives(predictions, batch, stage)
        if stage == sb.Stage.VALID and not torch.isfinite(loss):
            # left out of the average by Brain.update_average; said once
            self.skipped["valid"] += 1
            logger.warning("non-finite validation loss on batch %s: left "
                           "out of the validation loss", list(batch.id))
        return loss

    # ------------------------------------------------------------------
    # non-finite losses: skip the step, count, stop past a patience
    def fit_batch(self, batch):
        """SpeechBrain's step, except that a batch whose loss is not finite
        (NaN/inf audio, a teacher that fails on it) is skipped: no backward,
        no optimizer step, no teacher update; see
        :meth:`check_loss_isfinite`."""
        try:
            return super().fit_batch(batch)
        except _SkipBatch as skip:
            self.zero_grad(set_to_none=True)
            # raised inside SpeechBrain's no_sync(), which does not restore
            # DDP's gradient sync on an exception
            for module in self.modules.values():
                if hasattr(module, "require_backward_grad_sync"):
                    module.require_backward_grad_sync = True
            return skip.loss

    def check_loss_isfinite(self, loss):
        """Skips the batch of a non-finite loss on every process (the ranks
        agree, so that none waits in DDP's gradient all-reduce), counts it,
        and stops the run with a clear error once more than
        ``--nonfinite_patience`` batches of one epoch were skipped."""
        bad = torch.tensor(float(not torch.isfinite(loss).all()))
        if torch.distributed.is_available() and \
                torch.distributed.is_initialized():
            bad = bad.to(self.device)  # NCCL reduces device tensors
            torch.distributed.all_reduce(bad,
                                         op=torch.distributed.ReduceOp.MAX)
            bad = bad.cpu()
        if not bad:
            return
        self.nonfinite_count += 1
        self.skipped["train"] += 1
        if self.nonfinite_count > self.nonfinite_patience:
            raise FloatingPointError(
                f"{self.nonfinite_count} training batches of this epoch had "
                "a non-finite loss (more than --nonfinite_patience="
                f"{self.nonfinite_patience}); the last one: {self._batch_ids}."
                " Check those files for silence, clipping or NaN, lower the "
                "learning rate, or raise --nonfinite_patience"
            )
        logger.warning(
            "non-finite loss on batch %s: step skipped (%d this epoch, "
            "patience %d)", self._batch_ids, self.nonfinite_count,
            self.nonfinite_patience,
        )
        raise _SkipBatch(loss.detach().cpu())

    def on_fit_batch_start(self, batch, should_step):
        self._batch_ids = list(getattr(batch, "id", []))
        self.warmup_learning_rate()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = {"loss": stage_loss}
        skipped = self.skipped.get(stage.name.lower(), 0)
        if skipped:  # in the log next to the loss they are missing from
            stats["skipped_batches"] = skipped
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
        elif stage == sb.Stage.VALID:
            lr = self.optimizer.param_groups[0]["lr"]
            log = dict(stats_meta={"epoch": epoch, "lr": lr},
                       train_stats=self.train_stats, valid_stats=stats)
            self.hparams.train_logger.log_stats(**log)
            if self.tensorboard is not None:
                self.tensorboard.log_stats(**log)
            self.save_checkpoint(epoch, stage_loss)

    def save_checkpoint(self, epoch, valid_loss):
        """Keeps the newest checkpoint, and the best one(s) unless the YAML
        selects the last (``select_by: last``, for runs whose validation
        would need in-domain clean speech); with ``average_checkpoints: k``
        the ``k`` best are kept, to be averaged for evaluation.  With a
        metric name (``select_by: MSi``), that test metric is computed on
        the validation set (which then needs references) after every
        epoch.  Checkpoints whose meta says ``end_of_stage`` (the final
        student of a sequential stage) are never deleted.  Called on every
        process (the random states of all ranks are gathered first)."""
        meta = {"epoch": epoch, "valid_loss": valid_loss,
                **self.checkpoint_meta(epoch)}
        select = self.hparams.select_by
        keys = {"num_to_keep": 1}
        if select in self.metrics:
            meta[select] = self.validation_metric(select)
            keys = {"max_keys": [select], "num_to_keep": self.n_kept()}
        elif select != "last":
            keys = {"min_keys": ["valid_loss"], "num_to_keep": self.n_kept()}
        self.rng.gather()
        stage = meta.get("stage")  # None for schemes without stages

        def candidate(c):
            """This stage's checkpoints (ranked for keeping), intra-epoch
            ones and the new one; never an earlier stage's final one."""
            if c.meta.get("epoch") == epoch:
                return True  # the new one: its recency protects it
            return not c.meta.get("end_of_stage") and \
                c.meta.get("stage", stage) == stage

        self.checkpointer.save_and_keep_only(meta=meta,
                                             ckpt_predicate=candidate, **keys)
        if stage is not None:  # of earlier stages, only the final students
            self.checkpointer.delete_checkpoints(
                num_to_keep=0, ckpt_predicate=lambda c: not c.meta.get(
                    "end_of_stage") and c.meta.get("stage", stage) != stage)

    def n_kept(self):
        return max(1, self.n_averaged())

    def checkpoint_meta(self, epoch):
        """Extra meta of the end-of-epoch checkpoint (schemes add theirs)."""
        return {}

    def _save_intra_epoch_ckpt(self):
        self.rng.gather()  # every process calls this; main writes all
        super()._save_intra_epoch_ckpt()

    def fit(self, epoch_counter, train_set, valid_set=None, *args, **kw):
        self.selection_set = valid_set  # for metric-based selection
        return super().fit(epoch_counter, train_set, valid_set, *args, **kw)

    @torch.no_grad()
    def validation_metric(self, name):
        """Mean of test metric ``name`` over the validation set, through
        the evaluation path (whole utterances, the trained model)."""
        rows, system = [], self.systems()[self.model_key]
        saved_rows, self.test_rows = self.test_rows, rows
        loader = sb.dataio.dataloader.make_dataloader(self.selection_set,
                                                      batch_size=1)
        self.modules.eval()
        needed = self.metric_set.reference
        for batch in loader:
            if not hasattr(batch, needed):
                raise DataError(
                    f"select_by: {name} needs references ({needed}) in "
                    f"valid_csv {self.hparams.valid_csv}; select by "
                    "valid_loss or last instead"
                )
            estimate = self.apply_system(system, batch)
            n = batch.mix.data.shape[1]
            rows.append(self.test_item(estimate[0, ..., :n].float().cpu(),
                                       batch, 0, n))
        self.test_rows = saved_rows
        return reporting.average(rows, self.metrics)[name]

    def n_averaged(self):
        return int(getattr(self.hparams, "average_checkpoints", 0) or 0)

    def on_evaluate_start(self, max_key=None, min_key=None):
        """Loads the selected checkpoint, or the average of the ``k`` best
        (``average_checkpoints: k``; Sec. 3.5 of Saijo & Ogawa, 2023: the
        five checkpoints with the best validation score)."""
        if self.checkpointer is None:
            return
        keys = {"max_key": max_key, "min_key": min_key,
                "ckpt_predicate": self.evaluation_predicate()}
        ckpt = self.checkpointer.find_checkpoint(**keys)
        if ckpt is None:
            return
        self.before_loading(ckpt)
        self.checkpointer.load_checkpoint(ckpt)
        k = self.n_averaged()
        if k and self.hparams.select_by != "last":
            ckpts = self.checkpointer.find_checkpoints(
                max_num_checkpoints=k, **keys)
            averaged = sb.utils.checkpoints.average_checkpoints(
                ckpts, self.model_key)
            unwrap(self.modules[self.model_key]).load_state_dict(averaged)

    def evaluation_predicate(self):
        """Which checkpoints evaluation may pick (None: any)."""
        return None

    def before_loading(self, ckpt):
        """Called with the checkpoint about to be loaded (for evaluation or
        to resume training), before any weights are: a scheme whose models
        change architecture during training rebuilds them here."""

    def selection_keys(self):
        """``evaluate`` kwargs that pick the selected checkpoint."""
        if self.hparams.select_by == "last":
            return {}
        if self.hparams.select_by in self.metrics:
            return {"max_key": self.hparams.select_by}
        return {"min_key": "valid_loss"}

    # ------------------------------------------------------------------
    # evaluation: one path for every scheme
    def systems(self):
        """``{name: callable(mix [B, T]) -> speech [B, T]}`` to evaluate;
        the input mixture always comes first.  For FUSS metrics: the model's
        outputs ``[B, N, T]`` only."""
        model = self.modules[self.model_key]
        if self.metric_set.separated:
            return {self.model_key: lambda mix: separate(model, mix)}
        if self.eval_output == "closest":  # apply_system picks one
            return {"mixture": lambda mix: mix,
                    self.model_key: lambda mix: separate(model, mix)}
        return {
            "mixture": lambda mix: mix,
            self.model_key: lambda mix: separate(model, mix)[:, 0],
        }

    def compute_forward(self, batch, stage):
        if stage != sb.Stage.TEST:
            return self.training_forward(batch, stage)
        return self.apply_system(self.eval_systems[self.eval_system], batch)

    def apply_system(self, system, batch):
        """``system`` (one of :meth:`systems`) on the batch's mixtures:
        speech ``[B, T]``, or every output ``[B, N, T]`` for a separated
        metric set; with ``eval_output: closest``, the output nearest the
        clean speech (permutation solving)."""
        estimate = system(batch.mix.data.to(self.device))
        if estimate.dim() == 3 and not self.metric_set.separated:
            estimate = closest_output(estimate,
                                      batch.clean.data.to(self.device))
        return estimate

    @property
    def metric_set(self):
        """The YAML's metric set (:mod:`speechbrain_remix.metrics`)."""
        if getattr(self, "_metric_set", None) is None:
            self._metric_set = metric_set(self.hparams)
        return self._metric_set

    @property
    def metrics(self):
        """Names of the per-utterance metrics (test_results.csv columns)."""
        return self.metric_set.names

    @classmethod
    def test_columns(cls, hparams):
        """Audio columns the test manifest needs under ``hparams``."""
        return metric_set(hparams).columns

    def test_item(self, estimate, batch, b, length):
        """Metrics of utterance ``b`` (its first ``length`` samples)."""
        return self.metric_set.score(estimate, batch, b, length)

    def test_objectives(self, estimate, batch):
        lengths = torch.round(batch.mix.lengths * batch.mix.data.shape[1])
        for b, uid in enumerate(batch.id):
            n = int(lengths[b])
            est = estimate[b, ..., :n].detach().float().cpu()
            self.test_rows.append({"ID": uid,
                                   **self.test_item(est, batch, b, n)})
            self.maybe_save_enhanced(uid, est)
            # for the figure; a reference-free test set has no clean speech
            if len(self.test_rows) == 1 and est.dim() == 1 and hasattr(
                    batch, "clean"):
                self.examples["clean"] = batch.clean.data[b, :n]
                self.examples[self.eval_system] = est
        return torch.tensor(0.0)

    def maybe_save_enhanced(self, uid, wav):
        limit = getattr(self.hparams, "save_enhanced", 0)
        if (self.eval_system == "mixture" or len(self.test_rows) > limit
                or not sb.utils.distributed.if_main_process()):
            return
        folder = os.path.join(
            self.results_folder(), "enhanced", self.eval_system
        )
        os.makedirs(folder, exist_ok=True)
        peak = max(1.0, float(wav.abs().max()))  # avoid clipping on write
        outputs = {uid: wav} if wav.dim() == 1 else {  # separated sources
            f"{uid}_s{k}": w for k, w in enumerate(wav)}
        for name, w in outputs.items():
            sf.write(os.path.join(folder, f"{name}.wav"),
                     (w / peak).numpy(), self.hparams.sample_rate)

    def evaluate_systems(self, test_set, loader_kwargs):
        """Evaluates every system on ``test_set``; writes
        ``test_results.csv`` (the trained model), ``test_results_<system>.csv``
        (the others) and ``summary.csv``, and prints the summary table;
        with a ``speaker`` column in the test manifest, also the means per
        speaker, ``speaker_results.csv``."""
        summary, results, per_speaker = {}, {}, {}
        speakers = reporting.speakers_of(getattr(self.hparams, "test_csv",
                                                 None))
        keys = self.selection_keys()
        self.on_evaluate_start(**keys)  # load the selected checkpoint once
        self.eval_systems = self.systems()
        for name in self.eval_systems:
            self.eval_system = name
            self.evaluate(test_set, test_loader_kwargs=loader_kwargs, **keys)
            fname = ("test_results.csv" if name == self.evaluated_model()
                     else f"test_results_{name}.csv")
            results[name] = os.path.join(self.results_folder(), fname)
            summary[name] = reporting.average(self.test_rows, self.metrics)
            if speakers:
                per_speaker[name] = reporting.by_speaker(
                    self.test_rows, speakers, self.metrics)
            # every rank evaluates the whole (unsharded) test set; one writes
            if sb.utils.distributed.if_main_process():
                reporting.write_results(results[name], self.test_rows,
                                        self.metrics)
        if sb.utils.distributed.if_main_process():
            folder = self.results_folder()
            reporting.write_summary(os.path.join(folder, "summary.csv"),
                                    summary, self.metrics)
            print(f"\nTest results ({folder})\n"
                  + reporting.format_table(summary, self.metrics), flush=True)
            if per_speaker:  # a test manifest with a speaker column
                reporting.write_speaker_results(
                    os.path.join(folder, "speaker_results.csv"), per_speaker,
                    self.metrics)
            reporting.write_figures(
                folder, self.hparams.train_logger.save_file, results,
                self.examples, self.hparams.sample_rate, self.metrics)
        return summary

    def results_folder(self):
        """Where evaluation writes results, enhanced wavs and figures."""
        folder = self.hparams.output_folder
        os.makedirs(folder, exist_ok=True)
        return folder

    def evaluated_model(self):
        """Name of the system whose results go to ``test_results.csv``."""
        return self.model_key

    def inference_module(self):
        """The module that enhances, as evaluation applies it: a separation
        model (``[B, T] -> [B, M, T]``, speech first; the inference
        interface normalizes and projects as :func:`separate` does) or a
        module with ``outputs_speech = True`` (``[B, T] -> [B, T]``).
        Exported and loaded by :mod:`speechbrain_remix.inference`."""
        return unwrap(self.modules[self.model_key])
