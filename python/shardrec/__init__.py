"""shardrec's files from Python (h5py + numpy): datasets, checkpoints,
exports; scoring with a trained model; the metrics of `shardrec eval`.

    import shardrec
    data = shardrec.open_dataset("data/synth.h5")
    ckpt = shardrec.open_checkpoint("runs/quickstart/model.h5")
    model = shardrec.load_model(ckpt, data)
    m = shardrec.evaluate(model, data.test, ["recall@20", "ndcg@100"])
    print(m.means())

    python3 -m shardrec eval runs/quickstart/model.h5 --split test
"""

from .checkpoint import Checkpoint, open_checkpoint
from .dataset import CSR, Dataset, EvalSplit, Feature, open_dataset
from .export import Export, open_export
from .metrics import Metrics, evaluate
from .models import load_model

__all__ = ["CSR", "Checkpoint", "Dataset", "EvalSplit", "Export", "Feature", "Metrics", "evaluate", "load_model",
           "open_checkpoint", "open_dataset", "open_export"]
