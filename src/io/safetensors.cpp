#include "io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>

#include "io/atomic_file.h"
#include "krea2/error.h"

namespace krea2 {

namespace {

using ordered_json = nlohmann::ordered_json;

constexpr std::string_view kMetadataKey = "__metadata__";

// JSON text for error messages, cut short so a hostile header cannot produce a huge message.
std::string brief(const ordered_json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// A non-negative JSON integer (floats and booleans are not integers here).
std::optional<uint64_t> as_nonneg_int(const ordered_json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

uint64_t read_le64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

[[noreturn]] void throw_at(const std::string& path, const std::string& msg) {
  throw Error(path + ": " + msg);
}

struct Range {
  uint64_t begin, end;
  size_t index;
};

}  // namespace

SafetensorsHeader parse_safetensors(std::span<const std::byte> bytes, const std::string& path) {
  const std::byte* base = bytes.data();
  const size_t size = bytes.size();
  SafetensorsHeader result;
  std::vector<TensorView>& tensors = result.tensors;
  std::map<std::string, std::string>& metadata = result.metadata;
  if (size < 8)
    throw_at(path, "file is " + std::to_string(size) +
                       " bytes, shorter than the 8-byte header length of a safetensors file");
  const uint64_t header_len = read_le64(base);
  if (header_len > kMaxSafetensorsHeaderBytes)
    throw_at(path, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                       std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  if (header_len > size - 8)
    throw_at(path, "header length " + std::to_string(header_len) + " exceeds the file size (" +
                       std::to_string(size) + " bytes, " + std::to_string(size - 8) +
                       " after the length field); file truncated or not safetensors");

  const char* text = reinterpret_cast<const char*>(base + 8);
  ordered_json header;
  // Duplicate top-level keys would silently shadow each other in the parsed object: reject them.
  std::set<std::string> top_keys;
  std::optional<std::string> duplicate;
  ordered_json::parser_callback_t on_event = [&](int depth, nlohmann::json::parse_event_t event,
                                                 ordered_json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && !duplicate) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!top_keys.insert(key).second) duplicate = key;
    }
    return true;
  };
  try {
    header = ordered_json::parse(text, text + header_len, on_event);
  } catch (const nlohmann::json::exception& e) {
    throw_at(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object())
    throw_at(path, std::string("header is not a JSON object (found ") + header.type_name() + ")");
  if (duplicate) throw_at(path, "tensor " + *duplicate + ": name appears twice in the header");

  const uint64_t data_size = size - 8 - header_len;
  const std::byte* data_block = base + 8 + header_len;
  std::vector<Range> ranges;

  for (const auto& [name, entry] : header.items()) {
    if (name == kMetadataKey) {
      if (!entry.is_object())
        throw_at(path, "__metadata__ must be an object of strings, found " + std::string(entry.type_name()));
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string())
          throw_at(path, "__metadata__ must be an object of strings, but key \"" + k + "\" holds a " +
                             v.type_name() + " (" + brief(v) + ")");
        metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor " + name + ": ";
    if (!entry.is_object())
      throw_at(path, where + "entry is not a JSON object (found " + entry.type_name() + ")");

    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) throw_at(path, where + "missing or non-string \"dtype\"");
    const std::string& dtype_str = dt->get_ref<const std::string&>();
    std::optional<DType> dtype = dtype_from_name(dtype_str);
    if (!dtype || !dtype_is_safetensors(*dtype))
      throw_at(path, where + "unknown dtype \"" + dtype_str + "\"");

    auto sh = entry.find("shape");
    if (sh == entry.end()) throw_at(path, where + "missing \"shape\"");
    if (!sh->is_array())
      throw_at(path, where + "shape must be a list of non-negative integers, got " + brief(*sh));
    Shape shape;
    // numel * dtype_size, computed with overflow checks so a huge shape cannot wrap around.
    uint64_t need = dtype_size(*dtype);
    bool overflow = false;
    for (const auto& d : *sh) {
      std::optional<uint64_t> v = as_nonneg_int(d);
      if (!v || *v > uint64_t(INT64_MAX))
        throw_at(path, where + "shape must be a list of non-negative integers, got " + brief(*sh));
      shape.push_back(static_cast<int64_t>(*v));
      overflow = overflow || __builtin_mul_overflow(need, *v, &need);
    }

    auto off = entry.find("data_offsets");
    if (off == entry.end()) throw_at(path, where + "missing \"data_offsets\"");
    std::optional<uint64_t> begin, end;
    if (off->is_array() && off->size() == 2) {
      begin = as_nonneg_int((*off)[0]);
      end = as_nonneg_int((*off)[1]);
    }
    if (!begin || !end)
      throw_at(path, where + "data_offsets must be 2 non-negative integers, got " + brief(*off));
    if (*begin > *end)
      throw_at(path, where + "data_offsets [" + std::to_string(*begin) + ", " + std::to_string(*end) +
                         "] have begin > end");
    if (overflow || need != *end - *begin)
      throw_at(path, where + "dtype " + dtype_str + " shape " + shape_str(shape) + " needs " +
                         (overflow ? std::string("more than 2^64") : std::to_string(need)) +
                         " bytes, data_offsets give " + std::to_string(*end - *begin));
    if (*end > data_size)
      throw_at(path, where + "data_offsets [" + std::to_string(*begin) + ", " + std::to_string(*end) +
                         "] extend past the data block of " + std::to_string(data_size) +
                         " bytes (file truncated?)");

    TensorView view;
    view.name = name;
    view.dtype = *dtype;
    view.shape = std::move(shape);
    view.data = data_block + *begin;
    view.nbytes = static_cast<size_t>(*end - *begin);
    if (*end > *begin) ranges.push_back({*begin, *end, tensors.size()});
    tensors.push_back(std::move(view));
  }

  // Two tensors sharing bytes would alias; empty tensors occupy nothing and are skipped.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  const Range* widest = nullptr;  // among the ranges seen so far, the one reaching furthest
  for (const Range& r : ranges) {
    if (widest && r.begin < widest->end)
      throw_at(path, "tensors " + tensors[widest->index].name + " [" + std::to_string(widest->begin) + ", " +
                         std::to_string(widest->end) + ") and " + tensors[r.index].name + " [" +
                         std::to_string(r.begin) + ", " + std::to_string(r.end) + ") overlap");
    if (!widest || r.end > widest->end) widest = &r;
  }
  return result;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  SafetensorsHeader header = parse_safetensors({file_.data(), file_.size()}, path);
  tensors_ = std::move(header.tensors);
  metadata_ = std::move(header.metadata);
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json& meta = header[std::string(kMetadataKey)] = ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
  }
  std::vector<size_t> sizes;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    const std::string where = "tensor " + t.name + ": ";
    if (t.name.empty() || t.name == kMetadataKey) throw_at(path, "invalid tensor name \"" + t.name + "\"");
    if (header.contains(t.name)) throw_at(path, where + "name given twice");
    uint64_t nbytes = dtype_size(t.dtype);
    if (nbytes == 0) throw_at(path, where + "unknown dtype");
    for (int64_t d : t.shape) {
      if (d < 0) throw_at(path, where + "negative dimension in shape " + shape_str(t.shape));
      if (__builtin_mul_overflow(nbytes, uint64_t(d), &nbytes)) throw_at(path, where + "shape too large");
    }
    if (nbytes > 0 && !t.data) throw_at(path, where + "no data");
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", ordered_json::array({offset, offset + nbytes})}};
    offset += nbytes;
    sizes.push_back(size_t(nbytes));
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not valid UTF-8
    throw_at(path, std::string("cannot encode header: ") + e.what());
  }
  // Pad so the data block starts 8-byte aligned (8 + header length is then a multiple of 8).
  text.append((8 - text.size() % 8) % 8, ' ');

  AtomicFile out(path);
  const std::string len = le64(text.size());
  out.write(len.data(), len.size());
  out.write(text.data(), text.size());
  for (size_t i = 0; i < tensors.size(); ++i) out.write(tensors[i].data, sizes[i]);
  out.commit();
}

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<TensorToWrite> list;
  list.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    if (shape_numel(t.shape) != t.numel())
      throw Error(path + ": tensor " + name + ": shape " + shape_str(t.shape) + " has " +
                  std::to_string(shape_numel(t.shape)) + " elements but the data holds " +
                  std::to_string(t.numel()));
    list.push_back({name, DType::F32, t.shape, t.data.data()});
  }
  write_safetensors(path, list, metadata);
}

}  // namespace krea2
