class SecorderAutograd(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.SecorderAutograd,
    loss: Tensor,
    params: List[Tensor],
    create_graph: Tensor) -> List[Tensor]:
    # Exact diagonal of each parameter's own Hessian block; the last entry marks which
    # parameters the loss depends on.
    cg = bool(create_graph)
    out = annotate(List[Tensor], [])
    used = annotate(List[bool], [])
    if not loss.requires_grad:
      return self._unused(params)
    grads = torch.autograd.grad([loss], params, None, True, True, True)
    for i in range(len(params)):
      p = params[i]
      g = grads[i]
      if g is None:
        out.append(torch.zeros_like(p))
        used.append(False)
      else:
        gg = g
        used.append(True)
        if not gg.requires_grad:
          out.append(torch.zeros_like(p))
        elif cg:
          out.append(self._diagonal_with_graph(gg, p))
        else:
          out.append(self._diagonal(gg, p))
    out.append(torch.tensor(used))
    return out

  def gradient(self: __torch__.SecorderAutograd,
    loss: Tensor,
    params: List[Tensor],
    create_graph: Tensor) -> List[Tensor]:
    # First derivatives, returned rather than accumulated into .grad; the last entry marks
    # which parameters the loss depends on.
    out = annotate(List[Tensor], [])
    used = annotate(List[bool], [])
    if not loss.requires_grad:
      return self._unused(params)
    grads = torch.autograd.grad([loss], params, None, None, bool(create_graph), True)
    for i in range(len(params)):
      g = grads[i]
      if g is None:
        out.append(torch.zeros_like(params[i]))
        used.append(False)
      else:
        out.append(g)
        used.append(True)
    out.append(torch.tensor(used))
    return out

  def _unused(self: __torch__.SecorderAutograd,
    params: List[Tensor]) -> List[Tensor]:
    out = annotate(List[Tensor], [])
    used = annotate(List[bool], [])
    for p in params:
      out.append(torch.zeros_like(p))
      used.append(False)
    out.append(torch.tensor(used))
    return out

  def _diagonal(self: __torch__.SecorderAutograd,
    g: Tensor,
    p: Tensor) -> Tensor:
    # One Hessian-vector product per element, with a reused one-hot seed: no graph is kept,
    # so the seed may be changed in place between products.
    n = torch.numel(p)
    d = torch.zeros([n], dtype=p.dtype, device=p.device)
    seed = torch.zeros_like(g)
    seed_flat = torch.reshape(seed, [-1])
    seeds = annotate(List[Optional[Tensor]], [seed])
    for j in range(n):
      seed_flat[j] = 1.0
      h = torch.autograd.grad([g], [p], seeds, True, False, True)[0]
      seed_flat[j] = 0.0
      if h is not None:
        hh = h
        d[j] = torch.reshape(hh, [-1])[j]
    return torch.reshape(d, p.size())

  def _diagonal_with_graph(self: __torch__.SecorderAutograd,
    g: Tensor,
    p: Tensor) -> Tensor:
    # Differentiable variant: every element is its own graph node, so no seed is reused.
    n = torch.numel(p)
    g_flat = torch.reshape(g, [-1])
    rows = annotate(List[Tensor], [])
    for j in range(n):
      h = torch.autograd.grad([g_flat[j]], [p], None, True, True, True)[0]
      if h is None:
        rows.append(torch.zeros([], dtype=p.dtype, device=p.device))
      else:
        hh = h
        rows.append(torch.reshape(hh, [-1])[j])
    if n == 0:
      return torch.zeros_like(p)
    return torch.reshape(torch.stack(rows), p.size())
