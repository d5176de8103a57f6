// PNG through libpng: encoded into memory (libpng's write callback), then written atomically; read back
// with libpng's simplified transforms for tests and tools. libpng reports errors by longjmp, so nothing with
// a destructor may live between setjmp and the libpng calls: buffers are owned outside.
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>

#include "io/atomic_file.h"
#include "io/text_file.h"
#include "krea2/error.h"
#include "krea2/image.h"

namespace krea2 {

namespace {

struct MemoryOut {
  std::vector<unsigned char> bytes;
};

void write_to_memory(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<MemoryOut*>(png_get_io_ptr(png));
  out->bytes.insert(out->bytes.end(), data, data + n);
}

void flush_nothing(png_structp) {}

bool is_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80 || c == 0) return false;
  return true;
}

struct MemoryIn {
  const std::vector<unsigned char>* bytes;
  size_t at = 0;
};

void read_from_memory(png_structp png, png_bytep data, png_size_t n) {
  auto* in = static_cast<MemoryIn*>(png_get_io_ptr(png));
  if (in->at + n > in->bytes->size()) png_error(png, "truncated PNG data");
  std::copy_n(in->bytes->data() + in->at, n, data);
  in->at += n;
}

// Only plain C data lives across the setjmp here (libpng longjmps out of its calls on error).
bool encode(MemoryOut* out, png_bytep* rows, png_text* text, int ntext, png_uint_32 width,
            png_uint_32 height) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, write_to_memory, flush_nothing);
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (ntext > 0) png_set_text(png, info, text, ntext);
  png_set_rows(png, info, rows);
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

// Reading in two steps, each with its own setjmp: the header (with the transforms to 8-bit RGB), then the
// rows into memory the caller sized.
struct Reader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  png_uint_32 width = 0, height = 0;
};

bool read_header(MemoryIn* in, Reader* r) {
  r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!r->png) return false;
  r->info = png_create_info_struct(r->png);
  if (!r->info || setjmp(png_jmpbuf(r->png))) return false;
  png_set_read_fn(r->png, in, read_from_memory);
  png_set_user_limits(r->png, 1 << 16, 1 << 16);
  png_read_info(r->png, r->info);
  const int color = png_get_color_type(r->png, r->info), depth = png_get_bit_depth(r->png, r->info);
  if (depth == 16) png_set_strip_16(r->png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(r->png);
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(r->png);
  if (depth < 8) png_set_packing(r->png);
  png_read_update_info(r->png, r->info);
  r->width = png_get_image_width(r->png, r->info);
  r->height = png_get_image_height(r->png, r->info);
  return png_get_rowbytes(r->png, r->info) == size_t(r->width) * 3;
}

bool read_rows(Reader* r, png_bytep* rows) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  png_read_image(r->png, rows);
  png_read_end(r->png, r->info);
  return true;
}

}  // namespace

void write_png(const std::string& path, const Rgb8Image& image) {
  if (image.height < 1 || image.width < 1 || image.height > (1 << 20) || image.width > (1 << 20) ||
      image.pixels.size() != size_t(image.height * image.width * 3))
    throw Error(path + ": cannot write a " + std::to_string(image.height) + " x " +
                std::to_string(image.width) + " RGB image from " + std::to_string(image.pixels.size()) +
                " bytes");
  for (const auto& [k, v] : image.text)
    if (k.empty() || k.size() > 79 || !is_ascii(k))
      throw Error(path + ": PNG text key '" + k + "' must be 1-79 ASCII characters");
  MemoryOut out;
  std::vector<png_bytep> rows(size_t(image.height));
  for (int64_t y = 0; y < image.height; ++y)
    rows[size_t(y)] = const_cast<png_bytep>(image.pixels.data() + y * image.width * 3);
  std::vector<png_text> text(image.text.size());
  for (size_t i = 0; i < image.text.size(); ++i) {
    text[i] = png_text{};
    text[i].key = const_cast<char*>(image.text[i].first.c_str());
    text[i].text = const_cast<char*>(image.text[i].second.c_str());
    if (is_ascii(image.text[i].second)) {
      text[i].compression = PNG_TEXT_COMPRESSION_NONE;
      text[i].text_length = image.text[i].second.size();
    } else {
      text[i].compression = PNG_ITXT_COMPRESSION_NONE;
      text[i].itxt_length = image.text[i].second.size();
    }
  }
  if (!encode(&out, rows.data(), text.data(), int(text.size()), png_uint_32(image.width),
              png_uint_32(image.height)))
    throw Error(path + ": libpng failed to encode the image");
  AtomicFile file(path);
  file.write(out.bytes.data(), out.bytes.size());
  file.commit();
}

Rgb8Image read_png(const std::string& path) {
  const std::string s = read_text_file(path, "the PNG file", uint64_t(1) << 30);
  const std::vector<unsigned char> bytes(s.begin(), s.end());
  if (bytes.size() < 8 || png_sig_cmp(bytes.data(), 0, 8) != 0) throw Error(path + ": not a PNG file");
  MemoryIn in{&bytes};
  Reader r;
  struct Cleanup {
    Reader& r;
    ~Cleanup() { png_destroy_read_struct(&r.png, &r.info, nullptr); }
  } cleanup{r};
  if (!read_header(&in, &r)) throw Error(path + ": malformed or unsupported PNG");
  Rgb8Image image;
  image.width = r.width;
  image.height = r.height;
  image.pixels.resize(size_t(image.width * image.height * 3));
  std::vector<png_bytep> rows(size_t(image.height));
  for (int64_t y = 0; y < image.height; ++y) rows[size_t(y)] = image.pixels.data() + y * image.width * 3;
  if (!read_rows(&r, rows.data())) throw Error(path + ": malformed PNG data");
  png_textp text = nullptr;
  const int n = png_get_text(r.png, r.info, &text, nullptr);
  for (int i = 0; i < n; ++i)
    image.text.emplace_back(
        text[i].key,
        std::string(text[i].text, text[i].compression >= PNG_ITXT_COMPRESSION_NONE ? text[i].itxt_length
                                                                                   : text[i].text_length));
  return image;
}

std::vector<Rgb8Image> split_rgb8_batch(const std::vector<uint8_t>& bytes, int64_t batch, int64_t height,
                                        int64_t width) {
  const size_t per = size_t(height * width * 3);
  if (batch < 1 || bytes.size() != per * size_t(batch))
    throw Error("split_rgb8_batch: " + std::to_string(bytes.size()) + " bytes are not " +
                std::to_string(batch) + " images of " + std::to_string(height) + " x " +
                std::to_string(width) + " x 3");
  std::vector<Rgb8Image> out(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    out[size_t(b)].height = height;
    out[size_t(b)].width = width;
    out[size_t(b)].pixels.assign(bytes.begin() + b * per, bytes.begin() + (b + 1) * per);
  }
  return out;
}

}  // namespace krea2
