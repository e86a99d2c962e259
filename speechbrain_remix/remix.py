"""Bootstrapped remixing (Eqs. 4, 5 and 17 of RemixIT).

The teacher's estimates of a batch of in-domain mixtures are split into
speech ``s~`` and noise ``n~``; the noise estimates are permuted across the
batch and added back to the speech estimates to form new *bootstrapped*
mixtures ``m~ = s~ + P n~`` (Eq. 5).  The permutation is returned so that
the pseudo-targets follow it.  Optionally, in-domain noise recordings
replace the permuted teacher noise with probability ``p_n`` (Eq. 17).

All randomness comes from a caller-owned ``torch.Generator`` so that a run
is reproducible and resumes exactly (see ``speechbrain_remix.rng``).
"""

import torch


def random_permutation(batch_size, generator=None, derangement=True):
    """Draws a batch permutation ``P`` (Eq. 5 of RemixIT).

    With ``derangement=False`` the permutation is uniform over all
    ``B x B`` permutation matrices, as written in Eq. 5; the identity (or any
    fixed point) then rebuilds an original mixture ``s~_b + n~_b = m_b``
    exactly, and the student learns nothing from that pair.  The default
    therefore draws uniformly among *derangements* (permutations with no
    fixed point, by rejection; about e = 2.7 draws on average), so that no
    bootstrapped mixture is an observed mixture.

    Arguments
    ---------
    batch_size : int
        Number of mixtures ``B`` in the batch.
    generator : torch.Generator, optional
        Source of randomness (CPU).
    derangement : bool
        Exclude permutations that leave any item in place.

    Returns
    -------
    torch.Tensor
        ``perm`` of shape ``[B]`` (long): bootstrapped mixture ``b`` takes
        the noise of mixture ``perm[b]``.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> perm = random_permutation(4, g)
    >>> sorted(perm.tolist())
    [0, 1, 2, 3]
    >>> bool((perm != torch.arange(4)).all())
    True
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if derangement and batch_size < 2:
        raise ValueError(
            "Bootstrapped remixing needs a batch of at least 2 mixtures to "
            "build a pseudo-mixture different from the observed one; set "
            "batch_size >= 2 (or derangement=False to allow the identity)."
        )
    identity = torch.arange(batch_size)
    while True:
        perm = torch.randperm(batch_size, generator=generator)
        if not derangement or bool((perm != identity).all()):
            return perm


def inverse_permutation(perm):
    """Returns the inverse permutation: ``x[perm][inverse(perm)] == x``.

    Arguments
    ---------
    perm : torch.Tensor
        A permutation of ``range(B)``, shape ``[B]``.

    Returns
    -------
    torch.Tensor
        ``inv`` with ``inv[perm[b]] = b``.

    Example
    -------
    >>> perm = torch.tensor([2, 0, 1])
    >>> inverse_permutation(perm).tolist()
    [1, 2, 0]
    """
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), device=perm.device)
    return inv


def speech_and_noise(estimates):
    """Consolidates ``M`` output slots into speech and one noise estimate.

    Slot 0 is speech; the remaining ``M - 1`` slots are noise and are
    summed, as RemixIT does for a MixIT teacher with ``M = 3``
    (``n~ = sum_i [n']_i``, Section II-C1).  With mixture-consistent
    estimates the two outputs still add up to the mixture (Eq. 4).

    Arguments
    ---------
    estimates : torch.Tensor
        Shape ``[B, M, T]`` with ``M >= 2``.

    Returns
    -------
    torch.Tensor
        Shape ``[B, 2, T]``: speech, then total noise.

    Example
    -------
    >>> est = torch.ones(2, 3, 5)
    >>> speech_and_noise(est)[:, 1].unique().tolist()
    [2.0]
    """
    if estimates.shape[1] < 2:
        raise ValueError("need at least a speech and a noise slot")
    return torch.stack(
        [estimates[:, 0], estimates[:, 1:].sum(dim=1)], dim=1
    )


def bootstrap_remix(speech, noise, perm):
    """Builds bootstrapped mixtures ``m~ = s~ + P n~`` (Eq. 5 of RemixIT).

    Arguments
    ---------
    speech : torch.Tensor
        Teacher speech estimates ``s~``, shape ``[B, T]``.
    noise : torch.Tensor
        Teacher noise estimates ``n~``, shape ``[B, T]``.
    perm : torch.Tensor
        Batch permutation from :func:`random_permutation`, shape ``[B]``.

    Returns
    -------
    mixtures : torch.Tensor
        Bootstrapped mixtures, shape ``[B, T]``.
    targets : torch.Tensor
        Pseudo-targets ``[s~, P n~]`` of Eq. 6, shape ``[B, 2, T]``.

    Example
    -------
    >>> s = torch.tensor([[1.0], [2.0]])
    >>> n = torch.tensor([[10.0], [20.0]])
    >>> mix, tgt = bootstrap_remix(s, n, torch.tensor([1, 0]))
    >>> mix.flatten().tolist()
    [21.0, 12.0]
    >>> tgt[:, 1].flatten().tolist()
    [20.0, 10.0]
    """
    permuted_noise = noise[perm]
    return speech + permuted_noise, torch.stack([speech, permuted_noise], 1)


def substitute_noise(permuted_noise, recorded_noise, p_n, generator=None):
    """In-domain noise remixing (Eq. 17 of RemixIT).

    ``n_b <- zeta_b * n_b^rec + (1 - zeta_b) * [P n~]_b`` with
    ``zeta_b ~ Bernoulli(p_n)`` drawn independently for every batch item.
    The paper sets ``p_n = |D_n| / (|D_n| + |D_m|)``.

    Arguments
    ---------
    permuted_noise : torch.Tensor
        The permuted teacher noise estimates ``P n~``, shape ``[B, T]``.
    recorded_noise : torch.Tensor
        Isolated in-domain noise recordings, shape ``[B, T]``.
    p_n : float
        Probability of using the recording, in ``[0, 1]``.
    generator : torch.Generator, optional
        Source of randomness (CPU).

    Returns
    -------
    noise : torch.Tensor
        The noise to remix, shape ``[B, T]``.
    zeta : torch.Tensor
        The Bernoulli draws (bool), shape ``[B]``.

    Example
    -------
    >>> est, rec = torch.zeros(3, 4), torch.ones(3, 4)
    >>> noise, zeta = substitute_noise(est, rec, 1.0)
    >>> bool(noise.eq(1).all()), zeta.tolist()
    (True, [True, True, True])
    """
    if not 0.0 <= p_n <= 1.0:
        raise ValueError(f"p_n must lie in [0, 1], got {p_n}")
    if permuted_noise.shape != recorded_noise.shape:
        raise ValueError(
            "recorded noise must have the shape of the noise estimates: "
            f"{tuple(recorded_noise.shape)} vs {tuple(permuted_noise.shape)}"
        )
    batch = permuted_noise.shape[0]
    zeta = torch.rand(batch, generator=generator) < p_n
    zeta = zeta.to(permuted_noise.device)
    noise = torch.where(zeta.unsqueeze(1), recorded_noise, permuted_noise)
    return noise, zeta


# ---------------------------------------------------------------------------
# N-output remixing of Saijo & Ogawa (2023): RemixIT and Self-Remixing
# trained from scratch.  Sources of a batch are ``[B, N, T]``; a batch
# shuffle is one permutation per output channel, ``perms[n]`` of shape
# ``[B]``: pseudo-mixture ``b`` takes channel ``n`` of mixture
# ``perms[n][b]``.


def channel_permutations(batch_size, n_channels, generator=None,
                         constrained=False, max_tries=1000):
    """Per-channel batch permutations ``Pi_n`` (Eq. 2 of Self-Remixing).

    With ``constrained`` no pseudo-mixture takes two sources of the same
    observed mixture: the permutations differ pairwise at every batch
    position (Sec. 2.4), which needs ``batch_size >= n_channels``.  They are
    drawn uniformly among valid ones by rejection, channel by channel.

    Arguments
    ---------
    batch_size : int
        ``B``.
    n_channels : int
        ``N`` output channels.
    generator : torch.Generator, optional
        Source of randomness.
    constrained : bool
        Forbid remixing sources of the same mixture.
    max_tries : int
        Rejection budget per channel before a valid cyclic construction is
        used instead.

    Returns
    -------
    torch.Tensor
        ``[N, B]`` long.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> perms = channel_permutations(4, 3, g, constrained=True)
    >>> bool(all(len(set(perms[:, b].tolist())) == 3 for b in range(4)))
    True
    """
    if constrained and batch_size < n_channels:
        raise ValueError(
            f"a constrained shuffle of {n_channels} output channels needs a "
            f"batch of at least {n_channels} mixtures (got {batch_size}): "
            "raise batch_size or set constrained: False"
        )
    perms = []
    for _ in range(n_channels):
        for _ in range(max_tries):
            perm = torch.randperm(batch_size, generator=generator)
            if not constrained or all(
                bool((perm != p).all()) for p in perms
            ):
                break
        else:  # valid by construction: shifted copies of one permutation
            base = torch.randperm(batch_size, generator=generator)
            shift = torch.randperm(batch_size, generator=generator)[
                : n_channels]
            return torch.stack([base.roll(int(s)) for s in shift])
        perms.append(perm)
    return torch.stack(perms)


def channel_shuffle(sources, generator=None):
    """Shuffles the output channels of each mixture (Eq. 7, channel
    shuffle): ``s_b <- Lambda_b s_b``.

    Arguments
    ---------
    sources : torch.Tensor
        ``[B, N, T]``.
    generator : torch.Generator, optional
        Source of randomness.

    Returns
    -------
    torch.Tensor
        ``[B, N, T]``, every row a permutation of its channels.

    Example
    -------
    >>> x = torch.arange(6.0).view(2, 3, 1)
    >>> y = channel_shuffle(x, torch.Generator().manual_seed(1))
    >>> sorted(y[0].flatten().tolist()), sorted(y[1].flatten().tolist())
    ([0.0, 1.0, 2.0], [3.0, 4.0, 5.0])
    """
    batch, n_channels = sources.shape[:2]
    order = torch.stack([torch.randperm(n_channels, generator=generator)
                         for _ in range(batch)]).to(sources.device)
    return torch.gather(
        sources, 1, order[..., None].expand(-1, -1, sources.shape[-1])
    )


def remix_channels(sources, perms):
    """Batch shuffle per channel and remixing (Eq. 2 of Self-Remixing).

    Arguments
    ---------
    sources : torch.Tensor
        ``[B, N, T]`` separated sources.
    perms : torch.Tensor
        ``[N, B]`` from :func:`channel_permutations`.

    Returns
    -------
    mixtures : torch.Tensor
        Pseudo-mixtures ``[B, T]``.
    shuffled : torch.Tensor
        ``s^(Pi)``, ``[B, N, T]``: channel ``n`` of pseudo-mixture ``b``.

    Example
    -------
    >>> s = torch.arange(4.0).view(2, 2, 1)  # [[0, 1], [2, 3]]
    >>> mix, sh = remix_channels(s, torch.tensor([[0, 1], [1, 0]]))
    >>> mix.flatten().tolist()
    [3.0, 3.0]
    """
    perms = perms.to(sources.device)
    shuffled = torch.stack(
        [sources[perms[n], n] for n in range(sources.shape[1])], dim=1
    )
    return shuffled.sum(dim=1), shuffled


def unshuffle_channels(shuffled, perms):
    """Restores the order before the batch shuffle (Eq. 4): the inverse of
    :func:`remix_channels`' shuffle, channel by channel.

    Example
    -------
    >>> s = torch.randn(3, 2, 5)
    >>> perms = torch.tensor([[2, 0, 1], [1, 2, 0]])
    >>> torch.equal(unshuffle_channels(remix_channels(s, perms)[1], perms), s)
    True
    """
    perms = perms.to(shuffled.device)
    return torch.stack(
        [shuffled[inverse_permutation(perms[n]), n]
         for n in range(shuffled.shape[1])], dim=1
    )
