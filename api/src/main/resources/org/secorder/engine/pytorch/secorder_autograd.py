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
    # the graph is retained, as MXNet's adapter does, so that it can be differentiated again
    grads = torch.autograd.grad([loss], params, None, True, bool(create_graph), True)
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

  def hvp(self: __torch__.SecorderAutograd,
    loss: Tensor,
    params: List[Tensor],
    create_graph: Tensor) -> List[Tensor]:
    # Hessian-vector products by double backward. params packs a 0-d count m, the m variables,
    # then groups of m vectors, one group per product. The result has one entry per entry of
    # params: the product H v of each vector in that vector's slot, an empty tensor in the other
    # slots; the last entry marks the slots that carry a product (not those of variables the loss
    # does not depend on).
    cg = bool(create_graph)
    m = int(params[0].item())
    variables = params[1:1 + m]
    groups = (len(params) - 1 - m) // m
    out = annotate(List[Tensor], [])
    used = annotate(List[bool], [])
    for i in range(1 + m):
      out.append(torch.zeros([0], dtype=loss.dtype, device=loss.device))
      used.append(False)
    if not loss.requires_grad:
      return self._no_products(out, used, groups * m, loss)
    grads = torch.autograd.grad([loss], variables, None, True, True, True)
    gs = annotate(List[Tensor], [])
    which = annotate(List[int], [])
    for i in range(m):
      g = grads[i]
      if g is not None:
        gg = g
        if gg.requires_grad:
          gs.append(gg)
          which.append(i)
    for j in range(groups):
      base = 1 + m + j * m
      hs = annotate(List[Optional[Tensor]], [])
      for i in range(m):
        hs.append(None)
      if len(gs) > 0:
        seeds = annotate(List[Optional[Tensor]], [])
        for i in which:
          seeds.append(params[base + i])
        hs = torch.autograd.grad(gs, variables, seeds, True, cg, True)
      for i in range(m):
        if grads[i] is None:
          out.append(torch.zeros([0], dtype=loss.dtype, device=loss.device))
          used.append(False)
        else:
          h = hs[i]
          used.append(True)
          if h is None:
            out.append(torch.zeros_like(variables[i]))
          else:
            out.append(h)
    out.append(torch.tensor(used))
    return out

  def ggn(self: __torch__.SecorderAutograd,
    loss: Tensor,
    params: List[Tensor],
    create_graph: Tensor) -> List[Tensor]:
    # Generalized Gauss-Newton-vector products J^T H_loss J v. params packs a 0-d count m, the
    # model's output z, the m variables, then groups of m vectors. J v comes from the double-VJP
    # trick: J^T u is linear in a dummy cotangent u, and differentiating (J^T u) . v with respect
    # to u gives J v. H_loss (J v) is a Hessian-vector product of the loss with respect to z, and
    # J^T of that one more backward pass. The result is laid out as in hvp.
    cg = bool(create_graph)
    m = int(params[0].item())
    output = params[1]
    variables = params[2:2 + m]
    groups = (len(params) - 2 - m) // m
    out = annotate(List[Tensor], [])
    used = annotate(List[bool], [])
    for i in range(2 + m):
      out.append(torch.zeros([0], dtype=loss.dtype, device=loss.device))
      used.append(False)
    if not loss.requires_grad or not output.requires_grad:
      return self._no_products(out, used, groups * m, loss)
    u = torch.zeros_like(output)
    u.requires_grad_(True)
    jus = torch.autograd.grad([output], variables, self._seed(u), True, True, True)
    js = annotate(List[Tensor], [])
    which = annotate(List[int], [])
    for i in range(m):
      ju = jus[i]
      if ju is not None:
        jju = ju
        if jju.requires_grad:
          js.append(jju)
          which.append(i)
    gl = torch.autograd.grad([loss], [output], None, True, True, True)[0]
    for j in range(groups):
      base = 2 + m + j * m
      hjv = torch.zeros_like(output)
      if len(js) > 0 and gl is not None:
        seeds = annotate(List[Optional[Tensor]], [])
        for i in which:
          seeds.append(params[base + i])
        jv = torch.autograd.grad(js, [u], seeds, True, cg, True)[0]
        ggl = gl
        if jv is not None and ggl.requires_grad:
          jjv = jv
          h = torch.autograd.grad([ggl], [output], self._seed(jjv), True, cg, True)[0]
          if h is not None:
            hjv = h
      products = torch.autograd.grad([output], variables, self._seed(hjv), True, cg, True)
      for i in range(m):
        p = products[i]
        if jus[i] is None:
          out.append(torch.zeros([0], dtype=loss.dtype, device=loss.device))
          used.append(False)
        elif p is None:
          out.append(torch.zeros_like(variables[i]))
          used.append(True)
        else:
          out.append(p)
          used.append(True)
    out.append(torch.tensor(used))
    return out

  def _no_products(self: __torch__.SecorderAutograd,
    out: List[Tensor],
    used: List[bool],
    count: int,
    loss: Tensor) -> List[Tensor]:
    for i in range(count):
      out.append(torch.zeros([0], dtype=loss.dtype, device=loss.device))
      used.append(False)
    out.append(torch.tensor(used))
    return out

  def _seed(self: __torch__.SecorderAutograd,
    t: Tensor) -> List[Optional[Tensor]]:
    return annotate(List[Optional[Tensor]], [t])
