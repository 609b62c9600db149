"""HAM in a Lightning module: configure_optimizers returns it with an LR scheduler; a run trains,
writes a .ckpt, and a run resumed from it ends where an uninterrupted one does."""

from __future__ import annotations

import lightning  # the test extra installs it: a missing one fails, not skips
import torch
import torch.nn.functional as F

from ham import HAM

X = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(1))


class Classifier(lightning.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        optimizer = HAM(torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9), alpha=20.0, beta=1e-2)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)}


def _fit(root, epochs: int, ckpt_path=None) -> Classifier:
    model = Classifier()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=16)
    trainer = lightning.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, default_root_dir=root,
                                enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(model, data, ckpt_path=ckpt_path)
    return model


def test_ham_trains_checkpoints_and_resumes_from_a_ckpt_under_lightning(tmp_path):
    uninterrupted = _fit(tmp_path / "a", 3)
    _fit(tmp_path / "b", 2)
    checkpoint = next((tmp_path / "b").rglob("*.ckpt"))
    saved = torch.load(checkpoint, weights_only=False)
    assert saved["optimizer_states"][0]["ham"]["alpha"] == 20.0  # HAM's settings travel in the .ckpt
    resumed = _fit(tmp_path / "c", 3, ckpt_path=checkpoint)
    for a, b in zip(uninterrupted.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(uninterrupted.parameters(), Classifier().parameters()))
