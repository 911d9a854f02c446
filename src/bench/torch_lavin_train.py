"""PyTorch side of the `lavin-train` benchmark suite (bench/lavin-train.ts): one LaVIN training step — frozen LLaMA,
CLIP with router adapters, projector, modality token and mask, cross-entropy, backward, torch.optim.AdamW — written
as luogen1996/LaVIN (dd0a1bf) writes it: lavin/model.py (Transformer.forward, insert_image_embeds, Attention,
FeedForward, RMSNorm, precompute_freqs_cis / apply_rotary_emb), lavin/mm_adapter.py (RepAdapter_Router, AdapterMLP),
lavin/mm_adaptation.py (forward_llama_attn, forward_clip: the adapter before attention), clip/model.py
(ResidualAttentionBlock, LayerNorm, QuickGELU, the class token after every blocks/n_prompt-th block), train.py
(only names with 'adapter' train; timm's add_weight_decay groups; AdamW betas 0.9/0.95) and engine.py (backward,
optimizer step). Only torch and numpy are needed.

Departures, each so that both sides do the same work as egret's fp32 step on the CPU: fp32 throughout (the
official code runs under CUDA autocast and casts routes and visual tokens to fp16); every dropout p = 0 (the
suite trains with dropout 0); rows after the batch's last target are cut before the layers (they change neither
loss nor gradients under the causal mask; egret drops them too) — at 512 tokens with targets to the end, none is.

    python3 bench/torch_lavin_train.py JOB.json

JOB.json: llama (a Meta params.json + consolidated.00.pth folder, or an HF config.json + model.safetensors one), clip
(an OpenAI CLIP state dict, tensors visual.*), adapter (a LaVIN checkpoint: {'model': {'module.' + name}, 'args'}),
samples ([{example, labels, indicator, pixels: file of float32 [3, S, S]}], datasets.py's outputs), prefix_img and
prefix_nonimg (token ids, no BOS), lr, weight_decay, threads.

At start-up it runs two steps and prints one JSON line: torch's version, threads and BLAS, the rows per sequence,
both steps' losses (the suite checks them against egret's), times and the second step's peak memory. Then one
command per line on stdin: `step` (one training step, answers the loss), `quit`.
"""
import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_llama import load_safetensors


# ---- lavin/model.py -----------------------------------------------------------------------------------------------

def precompute_freqs_cis(dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    return torch.polar(torch.ones_like(freqs), freqs)


def reshape_for_broadcast(freqs_cis, x):
    shape = [d if i == 1 or i == x.ndim - 1 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(*shape)


def apply_rotary_emb(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        return self._norm(x.float()).type_as(x) * self.weight


class Attention(nn.Module):
    """The training path (no cache): keys and values are this call's."""

    def __init__(self, dim, n_heads):
        super().__init__()
        self.n_local_heads = n_heads
        self.head_dim = dim // n_heads
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, dim, bias=False)
        self.wv = nn.Linear(dim, dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)

    def forward(self, x, start_pos, freqs_cis, mask):
        bsz, seqlen, _ = x.shape
        xq, xk, xv = self.wq(x), self.wk(x), self.wv(x)
        xq = xq.view(bsz, seqlen, self.n_local_heads, self.head_dim)
        xk = xk.view(bsz, seqlen, self.n_local_heads, self.head_dim)
        xv = xv.view(bsz, seqlen, self.n_local_heads, self.head_dim)
        xq, xk = apply_rotary_emb(xq, xk, freqs_cis=freqs_cis)
        keys, values = xk, xv
        xq, keys, values = xq.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2)
        scores = torch.matmul(xq, keys.transpose(2, 3)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        scores = F.softmax(scores.float(), dim=-1).type_as(xq)
        output = torch.matmul(scores, values)
        output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.wo(output)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, dim, n_heads, hidden_dim, eps, adapter):
        super().__init__()
        self.attention = Attention(dim, n_heads)
        self.feed_forward = FeedForward(dim, hidden_dim)
        self.attention_norm = RMSNorm(dim, eps)
        self.ffn_norm = RMSNorm(dim, eps)
        self.adapter_attn = adapter

    def forward(self, x, start_pos, freqs_cis, mask):
        # mm_adaptation.py forward_llama_attn: the adapter between the norm and attention; drop_path is identity.
        h = x + self.attention.forward(self.adapter_attn(self.attention_norm(x)), start_pos, freqs_cis, mask)
        return h + self.feed_forward.forward(self.ffn_norm(h))


# ---- lavin/mm_adapter.py ------------------------------------------------------------------------------------------

class RepAdapter_Router(nn.Module):
    def __init__(self, in_features, hidden_dim=8, groups=2, scale=1.0, t=10.0):
        super().__init__()
        self.conv_A = nn.Conv1d(in_features, hidden_dim, 1, groups=1, bias=True)
        self.conv_B = nn.Conv1d(hidden_dim, in_features, 1, groups=groups, bias=True)
        self.conv_D = nn.Conv1d(hidden_dim, in_features, 1, groups=groups, bias=True)
        self.expert_weights = nn.Linear(in_features, 2)
        self.dropout = nn.Dropout(0.0)
        self.groups, self.scale, self.t = groups, scale, t

    def forward(self, x, weights=None):
        x = x.transpose(1, 2)
        if weights is None:
            # The route of position 0 along the last axis: the first token (LLaMA, batch-first) or, in CLIP's
            # sequence-first layout, batch element 0 at every token.
            weights = torch.softmax(self.expert_weights(x[:, :, 0]) / self.t, -1)
        x_ = self.dropout(self.conv_A(x))
        x = self.conv_B(x_) * self.scale * weights[:, 0, None, None] + self.conv_D(x_) * self.scale * weights[:, 1, None, None] + x
        return x.transpose(1, 2).contiguous()


class AdapterMLP(nn.Module):
    def __init__(self, in_features, hidden_dim, out_features):
        super().__init__()
        self.conv_A = nn.Linear(in_features, hidden_dim)
        self.conv_B = nn.Linear(hidden_dim, out_features)
        self.act = nn.SiLU()
        self.dropout = nn.Dropout(0.0)

    def forward(self, x):
        return self.conv_B(self.dropout(self.act(self.conv_A(x))))


# ---- clip/model.py, as LaVIN modifies it --------------------------------------------------------------------------

class LayerNorm(nn.LayerNorm):
    def forward(self, x):
        orig_type = x.dtype
        return super().forward(x.type(torch.float32)).type(orig_type)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head, adapter):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential()
        self.mlp.add_module('c_fc', nn.Linear(d_model, d_model * 4))
        self.mlp.add_module('gelu', QuickGELU())
        self.mlp.add_module('c_proj', nn.Linear(d_model * 4, d_model))
        self.ln_2 = LayerNorm(d_model)
        self.adapter_attn = adapter

    def attention(self, x):
        return self.attn(x, x, x, need_weights=False, attn_mask=None)[0]

    def forward(self, x):
        # mm_adaptation.py forward_clip.
        x = x + self.attention(self.adapter_attn(self.ln_1(x)))
        return x + self.mlp(self.ln_2(x))


class ClipTransformer(nn.Module):
    def __init__(self, width, layers, heads, adapters, n_prompt):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, adapters[i]) for i in range(layers)])
        self.every = layers // n_prompt

    def forward(self, x):
        cls = []
        for i, block in enumerate(self.resblocks):
            x = block(x)
            if (i + 1) % self.every == 0:
                cls.append(x[0])
        return torch.stack(cls, 1)


class VisionTransformer(nn.Module):
    def __init__(self, resolution, patch, width, layers, heads, adapters, n_prompt):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((resolution // patch) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = ClipTransformer(width, layers, heads, adapters, n_prompt)

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        x = torch.cat([self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype), x], dim=1)
        x = x + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = x.permute(1, 0, 2)  # NLD -> LND
        return self.transformer(x)  # [batch, n_prompt, width]: no ln_post, no proj


class Backbone(nn.Module):
    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    def encode_image(self, images):
        return self.visual(images)


class LaVIN(nn.Module):
    def __init__(self, dim, n_layers, n_heads, hidden_dim, eps, vocab, max_seq_len, clip, adapter):
        super().__init__()
        a = lambda width: RepAdapter_Router(width, adapter['hidden'], adapter['groups'], adapter['scale'], adapter['t'])
        self.vocab_size = vocab
        self.tok_embeddings = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([TransformerBlock(dim, n_heads, hidden_dim, eps, a(dim)) for _ in range(n_layers)])
        self.norm = RMSNorm(dim, eps)
        self.output = nn.Linear(dim, vocab, bias=False)
        self.freqs_cis = precompute_freqs_cis(dim // n_heads, max_seq_len * 2)
        self.backbone = Backbone(VisionTransformer(clip['resolution'], clip['patch'], clip['width'], clip['layers'], clip['heads'],
                                                   [a(clip['width']) for _ in range(clip['layers'])], adapter['n_prompt']))
        self.adapter_proj = AdapterMLP(clip['width'], adapter['hidden_proj'], dim)
        self.adapter_modality_embedding = nn.Embedding(2, dim)
        self.n_prompt = adapter['n_prompt']
        self.criterion = torch.nn.CrossEntropyLoss(ignore_index=0)

    def insert_image_embeds(self, examples, labels, image_embeds, prefix_img, prefix_nonimg, img_indicators):
        _bsz, seqlen, _ = examples.shape
        new_examples, new_labels = [], []
        for i, (example, label) in enumerate(zip(examples, labels)):
            if img_indicators[i] > 0.:
                new_example = torch.cat([example[:1], prefix_img, image_embeds[i], example[1:]], 0)
                new_label = torch.cat([label[:1], torch.zeros(prefix_img.shape[0] + image_embeds.shape[1]).type_as(labels), label[1:]])
            else:
                new_example = torch.cat([example[:1], prefix_nonimg, example[1:]], 0)
                new_label = torch.cat([label[:1], torch.zeros(prefix_nonimg.shape[0]).type_as(labels), label[1:]])
            new_examples.append(new_example[:seqlen].unsqueeze(0))
            new_labels.append(new_label[:seqlen].unsqueeze(0))
        return torch.cat(new_examples, 0), torch.cat(new_labels, 0)

    def forward(self, examples, labels, images, prefix_img, prefix_nonimg, img_indicators, rows):
        image_embeds = self.backbone.encode_image(images)
        modality_embed = self.adapter_modality_embedding(img_indicators.unsqueeze(1))
        image_embeds = self.adapter_proj(image_embeds)
        _bsz, seqlen = examples.shape
        examples = self.tok_embeddings(examples)
        prefix_img = self.tok_embeddings(prefix_img.unsqueeze(0)).squeeze(0)
        prefix_nonimg = self.tok_embeddings(prefix_nonimg.unsqueeze(0)).squeeze(0)
        h, labels = self.insert_image_embeds(examples, labels, image_embeds, prefix_img, prefix_nonimg, img_indicators)
        h = torch.cat([modality_embed, h], 1)[:, :seqlen]
        modality_labels = torch.zeros(_bsz, 1).type_as(labels)
        labels = torch.cat([modality_labels, labels], 1)[:, :seqlen]
        # Not in the official code (see the module comment): the rows after the last target are cut.
        h, labels, seqlen = h[:, :rows], labels[:, :rows], rows
        freqs_cis = self.freqs_cis[:seqlen]
        mask = torch.full((1, 1, seqlen, seqlen), float('-inf'))
        mask = torch.triu(mask, diagonal=1).type_as(h)
        mask[:, :, 1:, 0] = float('-inf')  # no row but 0 sees the modality token
        for layer in self.layers:
            h = layer(h, 0, freqs_cis, mask)
        h = self.norm(h)
        output = self.output(h)
        output = output[:, :-1, :].reshape(-1, self.vocab_size)
        labels = labels[:, 1:].flatten()
        return self.criterion(output, labels)


# ---- weights ------------------------------------------------------------------------------------------------------

def meta_llama(folder):
    """Meta's layout as LaVIN reads it: params.json and consolidated.00.pth (the tokenizer gives the vocabulary)."""
    with open(f'{folder}/params.json') as f:
        params = json.load(f)
    state = torch.load(f'{folder}/consolidated.00.pth', map_location='cpu')
    dim, layers = params['dim'], params['n_layers']
    hidden = state['layers.0.feed_forward.w1.weight'].shape[0]
    return state, dict(dim=dim, n_layers=layers, n_heads=params['n_heads'], hidden_dim=hidden, eps=params['norm_eps'],
                       vocab=state['tok_embeddings.weight'].shape[0])


def hf_llama(folder):
    """An HF-layout LLaMA renamed to Meta's names, wq/wk un-permuted (the inverse of transformers'
    convert_llama_weights_to_hf permute): the weights Meta's interleaved RoPE expects."""
    with open(f'{folder}/config.json') as f:
        cfg = json.load(f)
    w = load_safetensors(f'{folder}/model.safetensors')
    dim, heads = cfg['hidden_size'], cfg['num_attention_heads']
    unpermute = lambda t: t.view(heads, 2, dim // heads // 2, dim).transpose(1, 2).reshape(dim, dim)
    state = {'tok_embeddings.weight': w['model.embed_tokens.weight'], 'norm.weight': w['model.norm.weight'], 'output.weight': w['lm_head.weight']}
    for i in range(cfg['num_hidden_layers']):
        p, q = f'model.layers.{i}.', f'layers.{i}.'
        state.update({
            q + 'attention.wq.weight': unpermute(w[p + 'self_attn.q_proj.weight']), q + 'attention.wk.weight': unpermute(w[p + 'self_attn.k_proj.weight']),
            q + 'attention.wv.weight': w[p + 'self_attn.v_proj.weight'], q + 'attention.wo.weight': w[p + 'self_attn.o_proj.weight'],
            q + 'feed_forward.w1.weight': w[p + 'mlp.gate_proj.weight'], q + 'feed_forward.w2.weight': w[p + 'mlp.down_proj.weight'],
            q + 'feed_forward.w3.weight': w[p + 'mlp.up_proj.weight'],
            q + 'attention_norm.weight': w[p + 'input_layernorm.weight'], q + 'ffn_norm.weight': w[p + 'post_attention_layernorm.weight'],
        })
    return state, dict(dim=dim, n_layers=cfg['num_hidden_layers'], n_heads=heads, hidden_dim=cfg['intermediate_size'], eps=cfg['rms_norm_eps'],
                       vocab=cfg['vocab_size'])


def clip_geometry(path, state):
    """OpenAI's build_model derives heads = width / 64; a config.json beside the file may say otherwise (tiny towers)."""
    width, _, patch, _ = state['visual.conv1.weight'].shape
    grid = round((state['visual.positional_embedding'].shape[0] - 1) ** 0.5)
    layers = len({k.split('.')[3] for k in state if k.startswith('visual.transformer.resblocks.')})
    config = os.path.join(os.path.dirname(path), 'config.json')
    heads = width // 64
    if os.path.isfile(config):
        with open(config) as f:
            heads = json.load(f).get('heads', heads)
    return dict(width=width, patch=patch, resolution=grid * patch, layers=layers, heads=heads)


def skip_init():
    """torch.nn.utils.skip_init for a whole model: every weight is loaded right after, so the modules' random
    initialisation would only cost time (and, touched, the memory of a second copy of the model)."""
    names = ('kaiming_uniform_', 'uniform_', 'normal_', 'xavier_uniform_', 'constant_', 'zeros_', 'ones_')
    saved = {n: getattr(nn.init, n) for n in names}
    for n in names:
        setattr(nn.init, n, lambda tensor, *args, **kwargs: tensor)
    return lambda: [setattr(nn.init, n, f) for n, f in saved.items()]


def assign(model, weights):
    """load_state_dict without the copy (newer torch's assign=True): the loaded tensors become the parameters."""
    params = dict(model.named_parameters())
    unexpected = [k for k in weights if k not in params]
    missing = [k for k in params if k not in weights]
    if missing or unexpected:
        raise SystemExit(f'weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}')
    for name, tensor in weights.items():
        owner, _, leaf = name.rpartition('.')
        module = model.get_submodule(owner)
        if tuple(tensor.shape) != tuple(module._parameters[leaf].shape):
            raise SystemExit(f'{name}: {tuple(tensor.shape)}, the model has {tuple(module._parameters[leaf].shape)}')
        module._parameters[leaf] = nn.Parameter(tensor.contiguous())


def build(job):
    llama = job['llama']
    state, cfg = meta_llama(llama) if os.path.isfile(f'{llama}/params.json') else hf_llama(llama)
    clip_state = {k: v.float() for k, v in torch.load(job['clip'], map_location='cpu').items() if k.startswith('visual.')}
    clip = clip_geometry(job['clip'], clip_state)
    checkpoint = torch.load(job['adapter'], map_location='cpu')
    args = vars(checkpoint['args'])
    adapters = {k[len('module.'):] if k.startswith('module.') else k: v.float() for k, v in checkpoint['model'].items()}
    hidden, per_group = adapters['layers.0.adapter_attn.conv_A.weight'].shape[0], adapters['layers.0.adapter_attn.conv_B.weight'].shape[1]
    adapter = dict(hidden=hidden, groups=hidden // per_group, scale=args['adapter_scale'], t=args['temperature'], n_prompt=args['n_prompt'],
                   hidden_proj=adapters['adapter_proj.conv_A.weight'].shape[0])
    restore = skip_init()
    model = LaVIN(max_seq_len=job['max_words'], clip=clip, adapter=adapter, **cfg)
    restore()
    weights = {**state, **{'backbone.' + k: v for k, v in clip_state.items() if not k.startswith(('visual.ln_post', 'visual.proj'))}, **adapters}
    # LaVIN loads non-strictly: Meta's checkpoints hold the unused rope.freqs buffers.
    assign(model, {k: v for k, v in weights.items() if 'rope.freqs' not in k})
    # train.py: only the adapters train.
    for name, p in model.named_parameters():
        p.requires_grad = 'adapter' in name
    return model


def add_weight_decay(model, weight_decay):
    """timm's add_weight_decay, as train.py calls it."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if len(param.shape) == 1 or name.endswith('.bias') else decay).append(param)
    return [{'params': no_decay, 'weight_decay': 0.0}, {'params': decay, 'weight_decay': weight_decay}]


def status(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    return 0


def blas():
    found = re.search(r'BLAS_INFO=([^,\s]+)', torch.__config__.show())
    info = found.group(1) if found else 'unknown'
    with open('/proc/self/maps') as f:
        libs = sorted({line.split()[-1] for line in f if 'blas' in line.rsplit('/', 1)[-1]})
    return {'BLAS_INFO': info, 'loaded': libs}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('job')
    job_file = parser.parse_args().job
    with open(job_file) as f:
        job = json.load(f)
    torch.set_num_threads(job['threads'])
    torch.manual_seed(0)
    model = build(job)
    model.train()
    samples = job['samples']
    size = model.backbone.visual.conv1.kernel_size[0] * round((model.backbone.visual.positional_embedding.shape[0] - 1) ** 0.5)
    examples = torch.tensor([s['example'] for s in samples], dtype=torch.long)
    labels = torch.tensor([s['labels'] for s in samples], dtype=torch.long)
    images = torch.from_numpy(np.stack([np.fromfile(s['pixels'], dtype=np.float32).reshape(3, size, size) for s in samples]))
    indicators = torch.tensor([s['indicator'] for s in samples], dtype=torch.long)
    prefix_img = torch.tensor(job['prefix_img'], dtype=torch.long)
    prefix_nonimg = torch.tensor(job['prefix_nonimg'], dtype=torch.long)
    # The rows of each sequence (modality token first, then insert_image_embeds' order) up to the batch's last target.
    n_prompt = model.n_prompt
    last = 1
    for s in samples:
        inserted = len(prefix_img) + n_prompt if s['indicator'] > 0 else len(prefix_nonimg)
        row_labels = ([0, s['labels'][0]] + [0] * inserted + s['labels'][1:])[:job['max_words']]
        last = max(last, max(r for r, x in enumerate(row_labels) if x != 0 or r == 0))
    rows = last + 1
    optimizer = torch.optim.AdamW(add_weight_decay(model, job['weight_decay']), lr=job['lr'], betas=(0.9, 0.95))

    def step():
        loss = model(examples, labels, images, prefix_img, prefix_nonimg, indicators, rows)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    losses, seconds, peaks = [], [], []
    for _ in range(2):
        before = status('VmRSS')
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM to the current RSS
        t0 = time.perf_counter()
        losses.append(step())
        seconds.append(time.perf_counter() - t0)
        peaks.append(status('VmHWM') - before)
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': blas(), 'rows': rows, 'losses': losses,
                      'seconds': seconds, 'stepPeakBytes': peaks, 'rssBytes': status('VmRSS')}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == 'step':
            print(json.dumps(step()), flush=True)
        elif cmd == 'quit':
            break
        else:
            raise SystemExit(f'unknown command {cmd!r}')


if __name__ == '__main__':
    main()
