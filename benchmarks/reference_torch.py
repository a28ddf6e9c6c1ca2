"""The MultimodalTransformer architecture in plain PyTorch, trained eagerly.

The reference `benchmarks/throughput.py` compares keras_miam against: the same
tokenizers, masking and encoder written the way the authors' MaskSDM code
trains (a `torch.nn.Module`, `nn.TransformerEncoder` with `norm_first=True`,
masking with torch ops, `AdamW`, an eager Python loop). No Keras involved.

Architecture (the GeoPlant-like configuration `common.CONFIG`):

- tabular: periodic embeddings (48 frequencies per variable), a per-variable
  linear layer (einsum) and ReLU, one token per variable;
- climate and Landsat series: linear projection of `patch_len`-step segments;
- image: linear projection of non-overlapping patches, row + column position
  embeddings;
- each modality adds position and modality embeddings; NaN / inf / nodata
  values are zero-filled and a token is missing when all its values are;
- masking: per example p ~ MixProdBeta with r_m = 1 (MIAM before any scores,
  kappa = 10), tokens masked with probability p_m, at least one available
  token kept, masked tokens replaced by a mask token plus a slot embedding;
- pre-LN transformer (dropout on the attention weights and after each
  sub-block, as `keras_hub.layers.TransformerEncoder`), mean over visible
  tokens, LayerNorm, ReLU, Linear; BCE-with-logits loss, AdamW(1e-3,
  weight decay 0.01).

    python benchmarks/reference_torch.py --steps 10
"""

import argparse
import math
import sys

import common
import numpy as np

NODATA_THRESHOLD = 1e10


def build_model():
    import torch
    from torch import nn

    c = common.CONFIG
    d = c["embed_dim"]

    def clean(x):
        available = torch.isfinite(x) & (x.abs() <= NODATA_THRESHOLD)
        return torch.where(available, x, torch.zeros_like(x)), available

    def embedding(*shape):
        return nn.Parameter(nn.init.trunc_normal_(torch.empty(*shape), std=0.02))

    class Tabular(nn.Module):
        def __init__(self, num_features):
            super().__init__()
            k = c["num_frequencies"]
            bound = 1 / math.sqrt(2 * k)
            self.frequencies = nn.Parameter(
                nn.init.trunc_normal_(
                    torch.empty(num_features, k), std=0.01, a=-0.02, b=0.02
                )
            )
            self.kernel = nn.Parameter(
                torch.empty(num_features, 2 * k, d).uniform_(-bound, bound)
            )
            self.bias = nn.Parameter(
                torch.empty(num_features, d).uniform_(-bound, bound)
            )
            self.position = embedding(num_features, d)
            self.modality = embedding(d)

        def forward(self, x):
            x, available = clean(x)
            v = 2 * math.pi * self.frequencies * x[..., None]
            h = torch.einsum(
                "bfk,fkd->bfd", torch.cat([v.cos(), v.sin()], -1), self.kernel
            )
            tokens = torch.relu(h + self.bias) + self.position + self.modality
            return tokens, available

    class Series(nn.Module):
        def __init__(self, shape, patch_len):
            super().__init__()
            self.num_tokens = shape[0] // patch_len
            self.projection = nn.Linear(patch_len * shape[1], d)
            self.position = embedding(self.num_tokens, d)
            self.modality = embedding(d)

        def forward(self, x):
            values = x.reshape(x.shape[0], self.num_tokens, -1)
            values, available = clean(values)
            tokens = self.projection(values) + self.position + self.modality
            return tokens, available.any(-1)

    class Image(nn.Module):
        def __init__(self, shape, size):
            super().__init__()
            self.size = size
            self.grid = (shape[0] // size, shape[1] // size)
            self.projection = nn.Linear(size * size * shape[2], d)
            self.rows = embedding(self.grid[0], 1, d)
            self.columns = embedding(1, self.grid[1], d)
            self.modality = embedding(d)

        def forward(self, x):
            b, (gh, gw), s = x.shape[0], self.grid, self.size
            patches = x.reshape(b, gh, s, gw, s, x.shape[-1]).permute(0, 1, 3, 2, 4, 5)
            values, available = clean(patches.reshape(b, gh * gw, -1))
            position = (self.rows + self.columns).reshape(gh * gw, d)
            tokens = self.projection(values) + position + self.modality
            return tokens, available.any(-1)

    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokenizers = nn.ModuleDict(
                {
                    "env": Tabular(c["num_features"]),
                    "climate": Series(c["climate_shape"], c["climate_patch_len"]),
                    "landsat": Series(c["landsat_shape"], c["landsat_patch_len"]),
                    "image": Image(c["image_shape"], c["image_patch_size"]),
                }
            )
            counts = [
                c["num_features"],
                c["climate_shape"][0] // c["climate_patch_len"],
                c["landsat_shape"][0] // c["landsat_patch_len"],
                (c["image_shape"][0] // c["image_patch_size"]) ** 2,
            ]
            self.register_buffer(
                "token_modality",
                torch.repeat_interleave(torch.arange(4), torch.tensor(counts)),
            )
            self.mask_token = embedding(d)
            self.slot_embedding = nn.Parameter(torch.zeros(sum(counts), d))
            layer = nn.TransformerEncoderLayer(
                d,
                c["num_heads"],
                c["intermediate_dim"],
                c["dropout"],
                batch_first=True,
                norm_first=True,
            )
            # keras_hub's TransformerEncoder has no dropout inside its
            # feed-forward block (only on attention weights and after each
            # sub-block): drop PyTorch's extra one so both do the same work.
            layer.dropout = nn.Identity()
            self.encoder = nn.TransformerEncoder(
                layer, c["num_layers"], enable_nested_tensor=False
            )
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, c["num_outputs"])

        def sample_rates(self, batch_size, num_modalities):
            # MixProdBeta with r_m = 1: corner c, then p_m = U^(1/kappa) near
            # corner 1 and 1 - U^(1/kappa) near corner 0.
            corners = torch.cartesian_prod(*[torch.tensor([0.0, 1.0])] * num_modalities)
            weights = torch.full((len(corners),), 1 / (2 * (len(corners) - 2)))
            weights[0] = weights[-1] = 0.25
            chosen = corners[torch.multinomial(weights, batch_size, replacement=True)]
            u = torch.rand(batch_size, num_modalities) ** (1 / c["kappa"])
            return torch.where(chosen > 0.5, u, 1 - u)

        def forward(self, inputs):
            tokens, available = zip(
                *(self.tokenizers[m](inputs[m]) for m in self.tokenizers)
            )
            x, available = torch.cat(tokens, 1), torch.cat(available, 1)
            if self.training:
                p = self.sample_rates(x.shape[0], len(tokens))[:, self.token_modality]
                u = torch.rand_like(p)
                keep = (u >= p) & available
                slack = torch.where(available, u - p, torch.full_like(p, -2.0))
                rescue = (
                    nn.functional.one_hot(slack.argmax(1), x.shape[1]).bool()
                    & available
                )
                keep = torch.where(keep.any(1, keepdim=True), keep, rescue)
            else:
                keep = available
            x = torch.where(keep[..., None], x, self.mask_token + self.slot_embedding)
            x = self.encoder(x)
            weights = keep.float()
            weights = torch.where(
                weights.sum(1, keepdim=True) > 0, weights, torch.ones_like(weights)
            )
            pooled = (x * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)
            return self.head(torch.relu(self.norm(pooled)))

    return Reference()


def make_train_step(batch_size, seed=0):
    """The eager training step, over a few cycled synthetic batches.

    Returns:
        `(step, info)`: `step(i)` trains on batch `i` and returns the loss as
        a Python float (synchronised); `info()` describes the model.
    """
    import torch

    torch.manual_seed(seed)
    model = build_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    batches = [
        ({k: torch.from_numpy(v) for k, v in x.items()}, torch.from_numpy(y))
        for x, y in common.make_batches(4, batch_size, seed)
    ]

    def step(i):
        x, y = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    def info():
        return {
            "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "mode": "eager",
        }

    return step, info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--dropout",
        type=float,
        default=common.CONFIG["dropout"],
        help="dropout rate of the transformer blocks",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="worker mode for throughput.py (see `serve`)",
    )
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1")
    if not 0 <= args.dropout < 1:
        parser.error("--dropout must be in [0, 1)")
    common.CONFIG["dropout"] = args.dropout
    step, info = make_train_step(args.batch_size)
    if args.serve:
        return common.serve(step, info, args.warmup)
    common.timed_steps(step, 0, args.warmup)
    seconds = float(np.median(common.timed_steps(step, args.warmup, args.steps)))
    print(
        f"plain PyTorch (eager): {1e3 * seconds:.1f} ms / step (median of "
        f"{args.steps}), {args.batch_size / seconds:.1f} examples/s, "
        f"{info()['params']:,} trainable parameters"
    )


if __name__ == "__main__":
    sys.exit(main())
