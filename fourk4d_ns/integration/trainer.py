"""nerfstudio's trainer with checkpoints that are written atomically, and a run length that resuming keeps.

nerfstudio writes ``step-N.ckpt`` in place and then deletes the older ones, so an interruption while
writing leaves a truncated newest checkpoint that resuming then picks. Here the checkpoint is
written next to the checkpoint folder under a temporary name and renamed into it when complete.

nerfstudio also counts ``max_num_iterations`` from the loaded step, so the same command restarted
with ``--load-dir`` after a crash trains past the end of the run. Here it is the run's total: the
restarted command ends at the same last step, with the same learning rates, as the uninterrupted one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from nerfstudio.engine.callbacks import TrainingCallbackLocation
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils.decorators import check_main_thread
from nerfstudio.utils.rich_utils import CONSOLE

from fourk4d_ns.io.atomic import atomic_path
from fourk4d_ns.io.errors import DEBUG_VARIABLE, InputError, debug_requested, exit_with_user_error
from fourk4d_ns.playback.bake_format import bake_folder_of


@dataclass
class FourK4DTrainerConfig(TrainerConfig):
    """nerfstudio's trainer settings, with atomic checkpoints and decay over the actual run length."""

    _target: type = field(default_factory=lambda: FourK4DTrainer)
    max_num_iterations: int = 1000000
    """Steps of the whole run: a run resumed with --load-dir stops where the uninterrupted run stops."""
    decay_over_run: bool = True
    """Make every optimizer's exponential decay span max_num_iterations (published: x0.1 over the run)."""

    def get_checkpoint_dir(self) -> Path:
        """nerfstudio's checkpoint folder; also tells the model where this run's bake folder is.

        nerfstudio gives models no run folder, but every entry point (ns-train's Trainer,
        ns-viewer/ns-eval/ns-render's eval_setup) asks for the checkpoint folder before building
        the pipeline, so this is where the model config learns it.
        """
        model = getattr(self.pipeline, "model", None)
        if model is not None and hasattr(model, "bake_folder") and model.bake_folder is None:
            model.bake_folder = bake_folder_of(self.get_base_dir())
        return super().get_checkpoint_dir()

    def __post_init__(self) -> None:
        if self.decay_over_run:
            for group in self.optimizers.values():
                scheduler = group.get("scheduler")
                if isinstance(scheduler, ExponentialDecaySchedulerConfig):
                    scheduler.max_steps = self.max_num_iterations


class FourK4DTrainer(Trainer):
    """See the module docstring."""

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        """nerfstudio's setup; a capture or option the user must fix (``InputError``: a missing mask folder,
        a malformed camera file) ends ``ns-train`` with that one line instead of a traceback."""
        try:
            super().setup(test_mode=test_mode)
        except InputError as error:
            self._remove_unstarted_run()
            if debug_requested():
                raise
            exit_with_user_error("ns-train fourk4d", error, hint=f"{DEBUG_VARIABLE}=1 shows the traceback")

    def _remove_unstarted_run(self) -> None:
        """Removes the run folder when it holds nothing but the config.yml ns-train wrote before setup (a run
        that never started), and the experiment folders above it that this leaves empty."""
        base = Path(self.base_dir)
        if not base.is_dir() or [p.name for p in base.iterdir()] != ["config.yml"]:
            return
        shutil.rmtree(base)
        output_dir = Path(self.config.output_dir).resolve()
        for parent in base.resolve().parents:
            if parent == output_dir or output_dir not in parent.parents or any(parent.iterdir()):
                break
            parent.rmdir()

    def train(self) -> None:
        """Trains the steps of the run left after the loaded checkpoint (all of them without one)."""
        total = self.config.max_num_iterations
        if self._start_step > 0 and self._start_step >= total:
            self._finish_without_training()
            return
        # nerfstudio's loop runs max_num_iterations steps from the loaded one: lend it what remains (its
        # local writer took the total for its progress and ETA at setup; nothing reads the field meanwhile).
        self.config.max_num_iterations = total - self._start_step
        try:
            super().train()
        finally:
            self.config.max_num_iterations = total

    def _finish_without_training(self) -> None:
        """The end of nerfstudio's train() for a finished run restarted: saves the loaded step again (in this
        run's folder) and runs the after-training callbacks (the bake, which a kill may have cut short).

        nerfstudio's own loop would run no step, and its terminal writer fails when no step was logged.
        """
        self.step = self._start_step - 1
        CONSOLE.print(f"Checkpoint at step {self.step}: the run of {self.config.max_num_iterations} steps is done.")
        self._init_viewer_state()
        self.training_state = "completed"
        self.save_checkpoint(self.step)
        for callback in self.callbacks:
            callback.run_callback_at_location(step=self.step, location=TrainingCallbackLocation.AFTER_TRAIN)
        if not self.config.viewer.quit_on_train_completion:
            self._train_complete_viewer()

    @check_main_thread
    def save_checkpoint(self, step: int) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path: Path = self.checkpoint_dir / f"step-{step:09d}.ckpt"
        pipeline = self.pipeline.module if hasattr(self.pipeline, "module") else self.pipeline
        state = {
            "step": step,
            "pipeline": pipeline.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.optimizers.schedulers.items()},
            "scalers": self.grad_scaler.state_dict(),
        }
        # The temporary file stays outside the folder: nerfstudio parses a step from every file name in it.
        with atomic_path(path, temp_dir=self.checkpoint_dir.parent) as partial:
            torch.save(state, partial)
        if self.config.save_only_latest_checkpoint:
            for old in self.checkpoint_dir.glob("*.ckpt"):
                if old != path:
                    old.unlink()
