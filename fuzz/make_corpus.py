#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/{gguf,safetensors,lora}/ (seed_*). Minimized finds of fuzz runs live
beside them (find_*); this script leaves those alone. Run from anywhere: python3 fuzz/make_corpus.py"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- GGUF ------------------------------------------------------------------------------------------------

def u32(v): return struct.pack('<I', v)
def u64(v): return struct.pack('<Q', v)
def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return u64(len(b)) + b

SCALAR = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<B', 10: '<Q', 11: '<q', 12: '<d'}

def value(t, v):
    if t in SCALAR: return struct.pack(SCALAR[t], v)
    if t == 8: return gstr(v)
    et, items = v  # array
    return u32(et) + u64(len(items)) + b''.join(value(et, x) for x in items)

def kv(key, t, v): return gstr(key) + u32(t) + value(t, v)

# ggml type id -> (block elements, block bytes)
BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
         10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210)}

def nbytes(t, ne):
    be, bb = BLOCK[t]
    n = ne[0] // be * bb if ne else bb
    for d in ne[1:]: n *= d
    return n

def pad(b, a): return b + b'\0' * ((a - len(b) % a) % a)

def gguf(kvs, tensors, align=32, version=3, offsets=None, n_tensors=None, n_kv=None, cut=None):
    """tensors: (name, ggml dims, type); offsets default to gguf-py's packed layout."""
    out = b'GGUF' + u32(version) + u64(len(tensors) if n_tensors is None else n_tensors)
    out += u64(len(kvs) if n_kv is None else n_kv) + b''.join(kvs)
    off, data = 0, b''
    for i, (name, ne, t) in enumerate(tensors):
        o = offsets[i] if offsets else off
        out += gstr(name) + u32(len(ne)) + b''.join(u64(d) for d in ne) + u32(t) + u64(o)
        n = nbytes(t, ne) if t in BLOCK else 32
        n = n if n <= 4096 else 32  # a hostile shape gets a token amount of data
        data = pad(data + bytes((i * 37 + j) & 0xff for j in range(n)), align)
        off += len(pad(b'\0' * n, align))
    out = pad(out, align) + data
    return out[:cut] if cut else out

META = [kv('general.architecture', 8, 'krea2'), kv('general.name', 8, 'seed'),
        kv('general.quantization_version', 4, 2), kv('krea2.axes_dims_rope', 9, (5, [4, 2, 2])),
        kv('krea2.norm_eps', 6, 1e-5)]
ALL_TYPES = [kv('t.u8', 0, 7), kv('t.i8', 1, -7), kv('t.u16', 2, 700), kv('t.i16', 3, -700),
             kv('t.u32', 4, 70000), kv('t.i32', 5, -70000), kv('t.f32', 6, 0.5), kv('t.bool', 7, 1),
             kv('t.str', 8, 'x'), kv('t.u64', 10, 2**40), kv('t.i64', 11, -2**40), kv('t.f64', 12, 0.25),
             kv('t.arr', 9, (9, [(5, [1, 2]), (8, ['a', 'bc'])])), kv('t.bools', 9, (7, [0, 1]))]
TENSORS = [('first.weight', [16, 2], 1), ('first.bias', [2], 0), ('blocks.0.attn.wq.weight', [32, 2], 8)]
KQ = [('q2', [256], 10), ('q3', [256], 11), ('q4', [256], 12), ('q5', [256], 13), ('q6', [256], 14),
      ('q40', [32], 2), ('q41', [32], 3), ('q50', [32], 6), ('q51', [32], 7), ('bf', [4], 30)]

def gguf_seeds():
    s = {}
    s['valid'] = gguf(META, TENSORS)
    s['valid_all_value_types'] = gguf(ALL_TYPES, [('a', [8], 0)])
    s['valid_all_tensor_types'] = gguf(META[:1], KQ)
    s['valid_align64'] = gguf(META + [kv('general.alignment', 4, 64)], TENSORS, align=64)
    s['valid_v2'] = gguf(META, TENSORS, version=2)
    s['valid_empty'] = gguf([], [])
    s['valid_scalar_and_empty'] = gguf([], [('s', [], 0), ('e', [32, 0], 8)])
    s['valid_reordered'] = gguf([], [('a', [8], 0), ('b', [8], 0)], offsets=[32, 0])
    s['bad_version1'] = gguf(META, TENSORS, version=1)
    s['bad_big_endian'] = gguf(META, TENSORS, version=0x03000000)
    s['bad_truncated_data'] = gguf(META, TENSORS, cut=-40)
    s['bad_offset_past_end'] = gguf(META, TENSORS, offsets=[0, 64, 4096])
    s['bad_misaligned'] = gguf(META, TENSORS, offsets=[0, 70, 128])
    s['bad_overlap'] = gguf(META, TENSORS, offsets=[0, 32, 32])
    s['bad_n_dims_9'] = gguf(META, [('w', [32, 1, 1, 1, 1, 1, 1, 1, 1], 0)])
    s['bad_unknown_type'] = gguf(META, [('w', [32], 200)])
    s['bad_unsupported_type'] = gguf(META, [('w', [256], 16)])
    s['bad_block_multiple'] = gguf(META, [('w', [48], 8)])
    s['bad_dims_overflow'] = gguf([], [('w', [2**32, 2**32], 0)], offsets=[0])
    s['bad_duplicate_tensor'] = gguf([], [('w', [8], 0), ('w', [8], 0)])
    s['bad_duplicate_key'] = gguf([kv('k', 4, 1), kv('k', 4, 2)], [])
    s['bad_alignment_3'] = gguf([kv('general.alignment', 4, 3)], [('w', [8], 0)])
    s['bad_alignment_i32'] = gguf([kv('general.alignment', 5, 64)], [('w', [8], 0)])
    s['bad_bool_2'] = gguf([kv('b', 7, 2)], [])
    deep = (0, [1])
    for _ in range(9): deep = (9, [deep])
    s['bad_nested_9'] = gguf([kv('deep', 9, deep)], [])
    s['bad_string_len_2e62'] = (b'GGUF' + u32(3) + u64(0) + u64(1) + gstr('general.name') + u32(8) +
                                u64(2**62) + b'seed' * 8)
    s['bad_tensor_count_2e60'] = gguf(META, TENSORS, n_tensors=2**60)
    s['bad_kv_count_huge'] = gguf(META, TENSORS, n_kv=2**63)
    s['bad_array_count_huge'] = (b'GGUF' + u32(3) + u64(0) + u64(1) + gstr('a') + u32(9) + u32(5) +
                                 u64(2**61) + b'\0' * 32)
    return s

# ---- safetensors -----------------------------------------------------------------------------------------

def st(header, data=b'', length=None):
    h = header.encode() if isinstance(header, str) else header
    return struct.pack('<Q', len(h) if length is None else length) + h + data

def st_json(entries, data):
    h = json.dumps(entries).encode()
    return st(h + b' ' * ((8 - (len(h) + 8) % 8) % 8), data)

def safetensors_seeds():
    s = {}
    s['valid'] = st_json({'__metadata__': {'format': 'pt'},
                          'a': {'dtype': 'F32', 'shape': [2, 2], 'data_offsets': [0, 16]},
                          'b': {'dtype': 'BF16', 'shape': [3], 'data_offsets': [16, 22]},
                          'c': {'dtype': 'I64', 'shape': [], 'data_offsets': [22, 30]},
                          'd': {'dtype': 'F8_E4M3', 'shape': [0], 'data_offsets': [30, 30]},
                          'e': {'dtype': 'BOOL', 'shape': [1, 2], 'data_offsets': [30, 32]}}, bytes(range(32)))
    s['valid_empty'] = st('{}')
    s['valid_all_dtypes'] = st_json({d: {'dtype': d, 'shape': [1], 'data_offsets': [8 * i, 8 * i + n]}
                                     for i, (d, n) in enumerate([('F64', 8), ('F32', 4), ('F16', 2), ('I32', 4),
                                                                 ('I16', 2), ('I8', 1), ('U8', 1),
                                                                 ('F8_E5M2', 1)])}, b'\1' * 64)
    s['bad_overlap'] = st_json({'a': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
                                'b': {'dtype': 'F32', 'shape': [2], 'data_offsets': [4, 12]}}, b'\0' * 12)
    s['bad_past_end'] = st_json({'a': {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 16]}}, b'\0' * 8)
    s['bad_size'] = st_json({'a': {'dtype': 'F32', 'shape': [3], 'data_offsets': [0, 16]}}, b'\0' * 16)
    s['bad_shape_overflow'] = st_json({'a': {'dtype': 'F32', 'shape': [2**62, 2**62], 'data_offsets': [0, 0]}},
                                      b'')
    s['bad_dtype'] = st_json({'a': {'dtype': 'Q4_K', 'shape': [256], 'data_offsets': [0, 144]}}, b'\0' * 144)
    s['bad_duplicate'] = st('{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},'
                            '"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', b'\0' * 4)
    s['bad_metadata'] = st('{"__metadata__":{"k":1}}')
    s['bad_json'] = st('{"a":{"dtype":"F32",')
    s['bad_header_length'] = st('{}', length=2**63)
    s['bad_not_object'] = st('[1,2,3]')
    s['bad_deep_json'] = st('[' * 200 + ']' * 200)
    s['bad_short'] = b'\x02\0\0'
    return s

# ---- adapters (safetensors holding LoRA keys; fuzz_lora resolves them against the SMALL config) ----------

def adapter(tensors, metadata=None):
    """tensors: (name, shape); F32 data 0.01 * i, packed in order."""
    entries, data = {}, b''
    if metadata: entries['__metadata__'] = metadata
    for name, shape in tensors:
        n = 1
        for d in shape: n *= d
        entries[name] = {'dtype': 'F32', 'shape': shape, 'data_offsets': [len(data), len(data) + 4 * n]}
        data += b''.join(struct.pack('<f', 0.01 * (i % 13)) for i in range(n))
    return st_json(entries, data)

def lora_seeds():
    s = {}
    peft = json.dumps({'transformer.r': 1, 'transformer.lora_alpha': 2, 'transformer.alpha_pattern': {'to_k': 4}})
    s['valid_peft'] = adapter([('transformer.transformer_blocks.0.attn.to_k.lora_A.weight', [1, 64]),
                               ('transformer.transformer_blocks.0.attn.to_k.lora_B.weight', [32, 1])],
                              {'format': 'pt', 'lora_adapter_metadata': peft})
    s['valid_kohya'] = adapter([('lora_unet_txtfusion_layerwise_blocks_0_attn_wq.lora_down.weight', [1, 48]),
                                ('lora_unet_txtfusion_layerwise_blocks_0_attn_wq.lora_up.weight', [48, 1]),
                                ('lora_unet_txtfusion_layerwise_blocks_0_attn_wq.alpha', [])])
    s['valid_loha'] = adapter([('lycoris_img_in.hada_w1_a', [64, 1]), ('lycoris_img_in.hada_w1_b', [1, 16]),
                               ('lycoris_img_in.hada_w2_a', [64, 1]), ('lycoris_img_in.hada_w2_b', [1, 16]),
                               ('lycoris_img_in.alpha', [])])
    s['valid_lokr'] = adapter([('lycoris_final_layer_linear.lokr_w1', [2, 2]),
                               ('lycoris_final_layer_linear.lokr_w2_a', [8, 1]),
                               ('lycoris_final_layer_linear.lokr_w2_b', [1, 32])])
    s['valid_diff'] = adapter([('diffusion_model.blocks.1.mod.lin.diff', [384]), ('diffusion_model.first.diff_b', [64]),
                               ('diffusion_model.blocks.0.prenorm.scale.diff', [64])])
    s['bad_shape'] = adapter([('transformer.transformer_blocks.0.attn.to_k.lora_A.weight', [1, 64]),
                              ('transformer.transformer_blocks.0.attn.to_k.lora_B.weight', [64, 1])])
    s['bad_no_lora_keys'] = adapter([('img_in.weight', [2, 2])])
    s['bad_metadata_json'] = adapter([('x.lora_A.weight', [1, 2]), ('x.lora_B.weight', [2, 1])],
                                     {'lora_adapter_metadata': '{"transformer.r": '})
    s['bad_mixed_kinds'] = adapter([('x.lora_A.weight', [1, 2]), ('x.hada_w1_a', [2, 1])])
    s['bad_unknown_module'] = adapter([('lora_unet_nowhere_0.lora_down.weight', [1, 2]),
                                       ('lora_unet_nowhere_0.lora_up.weight', [2, 1])])
    return s

def write(folder, seeds, ext):
    path = os.path.join(HERE, 'corpus', folder)
    os.makedirs(path, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(path, 'seed_%s.%s' % (name, ext)), 'wb') as f:
            f.write(data)

if __name__ == '__main__':
    write('gguf', gguf_seeds(), 'gguf')
    write('safetensors', safetensors_seeds(), 'safetensors')
    write('lora', lora_seeds(), 'safetensors')
