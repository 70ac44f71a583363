"""``DistributedDataParallel``: every rank holds the whole model, takes a shard of each batch,
and averages gradients with the other ranks during ``backward``.

How it works (the design of Horovod and ``torch.nn.parallel.DistributedDataParallel``):

1. At wrap time rank 0's parameters are broadcast, so every rank starts from the same model.
2. Parameters are grouped into *buckets* of about ``bucket_bytes`` each, in reverse order of
   ``parameters()`` (backward reaches the last layers first). Sending one message per bucket
   instead of one per tensor pays the per-message latency once per bucket.
3. A gradient hook on each parameter copies its gradient into its bucket. When a bucket is
   full it is sent at once with a non-blocking all-reduce (``Iallreduce``), so that the
   network works while the rest of the gradients are still being handled. Buckets are sent
   in bucket order on every rank, as MPI requires collectives to be issued in the same order.
4. When the last parameter's gradient arrives, every request is waited for (with the
   deadline of ``lg.distributed.init``) and each ``.grad`` becomes the average over ranks.
   So after ``loss.backward()`` returns, the gradients are already averaged: ``opt.step()``
   needs nothing else.

With the loss a mean over each rank's equal share of the batch, the average of the ranks'
gradients is the gradient of the mean over the whole batch: N ranks on batches of B/N take
the same steps as one process on batches of B.

Labgrad's engine runs a leaf's hooks as soon as its gradient is final, in the middle of
``backward`` (``autograd._ready_leaves``): the last layer's gradients are ready first, so its
bucket is on its way while the earlier layers' gradients are still being computed. Whether
the network actually moves the bytes in the meantime depends on the MPI library: a
non-blocking collective may progress only inside MPI calls unless the library runs a
progress thread (an option of most MPI libraries; see yours); small buckets usually go at once.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from ..profiler.profile import begin, end
from .comm import DistributedError, _require, broadcast, wait

__all__ = ["DistributedDataParallel"]


class _Bucket:
    __slots__ = ("index", "params", "offsets", "send", "recv", "arrived", "request")

    def __init__(self, index, params, dtype):
        self.index = index
        self.params = params                    # indices into the DDP's parameter list
        self.offsets = []
        self.send = None
        self.recv = None
        self.arrived = 0
        self.request = None


class DistributedDataParallel:
    """Wrap ``model`` for data-parallel training across the ranks of ``lg.distributed``::

        lg.distributed.init()
        model = lg.distributed.DistributedDataParallel(MLP())
        opt = lg.optim.SGD(model.parameters(), lr=0.1)
        for xb, yb in loader_of_this_ranks_shard:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(); loss.backward(); opt.step()    # gradients averaged in backward

    It behaves like the model: calling it calls the model, and ``parameters()``,
    ``state_dict()``, ``train()``, attributes, ... are the model's. ``bucket_bytes``: the
    size of a bucket of gradients sent as one message (1 MiB by default).
    Every trainable parameter must get a gradient in each backward pass (as in the default
    mode of PyTorch's DDP); otherwise call ``synchronize()`` after backward.
    """

    def __init__(self, model, bucket_bytes=1 << 20, broadcast_parameters=True):
        world = _require()
        self.module = model
        self.world_size = world.comm.Get_size()
        self._params = [p for p in model.parameters() if p.requires_grad]
        if broadcast_parameters:
            for p in model.parameters():
                broadcast(p, root=0)
        self.buckets = self._make_buckets(bucket_bytes)
        self._where = {}                        # param index -> (bucket, offset, size)
        for b in self.buckets:
            offset = 0
            for i in b.params:
                size = int(np.prod(self._params[i].shape))
                b.offsets.append(offset)
                self._where[i] = (b, offset, size)
                offset += size
            dtype = np.dtype(self._params[b.params[0]].dtype)
            b.send = np.zeros(offset, dtype=dtype)
            b.recv = np.zeros(offset, dtype=dtype)
        self._handles = [p.register_hook(partial(self._on_grad, i)) for i, p in enumerate(self._params)]
        self._reset()

    def _make_buckets(self, bucket_bytes):
        buckets, current, size, dtype = [], [], 0, None
        for i in reversed(range(len(self._params))):
            p = self._params[i]
            nbytes = int(np.prod(p.shape)) * np.dtype(p.dtype).itemsize
            if current and (size + nbytes > bucket_bytes or np.dtype(p.dtype) != dtype):
                buckets.append(_Bucket(len(buckets), current, dtype))
                current, size = [], 0
            current.append(i)
            size += nbytes
            dtype = np.dtype(p.dtype)
        if current:
            buckets.append(_Bucket(len(buckets), current, dtype))
        return buckets

    def _reset(self):
        self._arrived = set()
        self._previous = {}                     # param index -> its .grad before this pass
        self._next_send = 0
        for b in self.buckets:
            b.arrived = 0
            b.request = None

    # ---- during backward
    def _on_grad(self, i, g):
        if i in self._arrived:
            raise DistributedError(
                f"parameter {i} ({self._describe(i)}) received two gradients in one backward pass "
                f"before they were averaged; DistributedDataParallel averages once per backward: "
                f"call backward once per step (or call synchronize() between passes)")
        p = self._params[i]
        self._previous[i] = p.grad
        bucket, offset, size = self._where[i]
        data = g.data
        bucket.send[offset:offset + size] = (data if isinstance(data, np.ndarray)
                                             else g._backend.to_numpy(data)).reshape(-1)
        self._arrived.add(i)
        bucket.arrived += 1
        self._send_ready()
        if len(self._arrived) == len(self._params):
            return self._finish(current=i)
        return None

    def _send_ready(self):
        MPI = _require().MPI
        comm = _require().comm
        while (self._next_send < len(self.buckets)
               and self.buckets[self._next_send].arrived == len(self.buckets[self._next_send].params)):
            b = self.buckets[self._next_send]
            span = begin(f"all_reduce (bucket {b.index})", category="comm", bytes=int(b.send.nbytes))
            b.request = comm.Iallreduce(b.send, b.recv, op=MPI.SUM)
            end(span)
            self._next_send += 1

    def _finish(self, current=None):
        span = begin("all_reduce wait", category="comm",
                     bytes=int(sum(b.send.nbytes for b in self.buckets)))
        try:
            for b in self.buckets:
                wait(b.request, f"the gradient all-reduce of bucket {b.index} "
                                f"({b.send.nbytes} bytes, DistributedDataParallel)")
        finally:
            end(span)
        returned = None
        for i, p in enumerate(self._params):
            if i not in self._arrived:
                continue
            bucket, offset, size = self._where[i]
            avg = bucket.recv[offset:offset + size].reshape(p.shape) / self.world_size
            backend = p._backend
            avg = p.__class__._wrap(avg if backend.xp is np else backend.asarray(avg), backend)
            if i == current:        # its gradient is not stored yet: the engine stores this
                returned = avg
            else:
                prev = self._previous.get(i)
                p.grad = avg if prev is None else prev + avg
        self._reset()
        return returned

    def synchronize(self):
        """Finish a backward pass in which some parameters got no gradient (they count as
        zero). Call it on every rank after ``backward`` and before ``step``; a no-op when
        the gradients were already averaged."""
        if not self._arrived:
            return
        for i in range(len(self._params)):
            if i not in self._arrived:
                bucket, offset, size = self._where[i]
                bucket.send[offset:offset + size] = 0
                bucket.arrived += 1
        self._send_ready()
        self._finish()

    def _describe(self, i):
        p = self._params[i]
        return f"{p.dtype}{list(p.shape)}"

    def _check_no_pending(self):
        if self._arrived:
            missing = [self._describe(i) for i in range(len(self._params)) if i not in self._arrived]
            raise DistributedError(
                f"the last backward pass gave gradients to only {len(self._arrived)} of "
                f"{len(self._params)} parameters (none for {', '.join(missing[:5])}), so they were "
                f"never averaged across ranks.\n  Call model.synchronize() after backward when "
                f"some parameters are unused, or freeze them with requires_grad_(False) before "
                f"wrapping the model.")

    def remove_hooks(self):
        """Take the gradient hooks off the model's parameters (to use the bare model alone)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ---- behaving like the model
    def __call__(self, *args, **kwargs):
        self._check_no_pending()
        return self.module(*args, **kwargs)

    def forward(self, *args, **kwargs):
        return self(*args, **kwargs)

    def parameters(self):
        return self.module.parameters()

    def named_parameters(self, prefix=""):
        return self.module.named_parameters(prefix)

    def state_dict(self):
        """The wrapped model's state dict (no ``module.`` prefix: it loads into the bare model)."""
        return self.module.state_dict()

    def load_state_dict(self, state_dict, strict=True):
        return self.module.load_state_dict(state_dict, strict=strict)

    def train(self, mode=True):
        self.module.train(mode)
        return self

    def eval(self):
        self.module.eval()
        return self

    def zero_grad(self, set_to_none=True):
        self.module.zero_grad(set_to_none)

    def __getattr__(self, name):
        if name == "module":                    # not set yet: __init__ failed early
            raise AttributeError(name)
        return getattr(self.module, name)

    def __repr__(self):
        return (f"DistributedDataParallel(world_size={self.world_size}, buckets={len(self.buckets)},\n"
                f"  {self.module!r})")
