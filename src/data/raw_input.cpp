// Streaming line reader (plain/gzip, hashed), text decoding and the object-literal scanner.
#include "data/raw_input.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "cora/core/error.h"

namespace cora::data::raw {

// ---------------------------------------------------------------------------------------------
// LineReader

namespace {
constexpr size_t kBlock = 1 << 20;
}

struct LineReader::Impl {
  std::FILE* file = nullptr;
  EVP_MD_CTX* sha = nullptr;
  bool gzip = false;
  bool gz_done = false;   // the last member ended exactly at the end of the file
  z_stream z{};
  std::vector<unsigned char> in;
  uint64_t file_bytes = 0;
  bool file_eof = false;
  size_t block = kBlock;      // raw read size: up to 1 MB, less for a small file
  size_t out_block = kBlock;  // inflated text per fill (gzip)

  ~Impl() {
    if (file) std::fclose(file);
    if (sha) EVP_MD_CTX_free(sha);
    if (gzip) inflateEnd(&z);
  }
  // Reads the next raw block into `in` (hashing it); returns its size.
  size_t read_raw() {
    in.resize(block);
    size_t n = std::fread(in.data(), 1, block, file);
    in.resize(n);
    if (n < block) file_eof = true;
    file_bytes += n;
    if (n) EVP_DigestUpdate(sha, in.data(), n);
    return n;
  }
};

LineReader::LineReader(const std::string& path) : impl_(std::make_unique<Impl>()), path_(path) {
  impl_->file = std::fopen(path.c_str(), "rb");
  if (!impl_->file) throw Error::at(path, 0, std::string("cannot open: ") + std::strerror(errno));
  impl_->sha = EVP_MD_CTX_new();
  EVP_DigestInit_ex(impl_->sha, EVP_sha256(), nullptr);
  struct stat st {};
  if (::fstat(::fileno(impl_->file), &st) == 0 && S_ISREG(st.st_mode)) {
    // Buffers sized to the file (a page at least): small files cost no 1 MB buffers.
    const size_t size = static_cast<size_t>(st.st_size) + 1;
    impl_->block = std::min(kBlock, (size + 4095) / 4096 * 4096);
    impl_->out_block = std::min(kBlock, std::max<size_t>(1 << 16, 8 * impl_->block));
  }
  impl_->read_raw();
  if (std::ferror(impl_->file)) throw Error::at(path, 0, "read error");
  if (impl_->in.size() >= 2 && impl_->in[0] == 0x1f && impl_->in[1] == 0x8b) {
    impl_->gzip = true;
    if (inflateInit2(&impl_->z, 16 + MAX_WBITS) != Z_OK) throw Error::at(path, 0, "zlib init failed");
    impl_->z.next_in = impl_->in.data();
    impl_->z.avail_in = static_cast<uInt>(impl_->in.size());
  } else {
    buf_.assign(reinterpret_cast<const char*>(impl_->in.data()), impl_->in.size());
    text_bytes_ += impl_->in.size();
    if (impl_->file_eof) eof_ = true;
  }
}

LineReader::~LineReader() = default;

bool LineReader::gzip() const { return impl_->gzip; }
uint64_t LineReader::file_bytes() const { return impl_->file_bytes; }

std::string LineReader::sha256_hex() {
  // Hash whatever has not been read yet (e.g. the reader stopped early).
  while (!impl_->file_eof) impl_->read_raw();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  EVP_MD_CTX_copy_ex(copy, impl_->sha);
  EVP_DigestFinal_ex(copy, md, &n);
  EVP_MD_CTX_free(copy);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += hex[md[i] >> 4];
    s += hex[md[i] & 15];
  }
  return s;
}

// Appends more text to buf_; false when nothing is left.
bool LineReader::fill() {
  if (eof_) return false;
  Impl& m = *impl_;
  if (!m.gzip) {
    size_t n = m.read_raw();
    if (std::ferror(m.file)) throw Error::at(path_, line_no_, "read error");
    buf_.append(reinterpret_cast<const char*>(m.in.data()), n);
    text_bytes_ += n;
    if (m.file_eof) eof_ = true;
    return n > 0 || !eof_;
  }
  size_t old = buf_.size();
  buf_.resize(old + m.out_block);
  m.z.next_out = reinterpret_cast<Bytef*>(buf_.data() + old);
  m.z.avail_out = static_cast<uInt>(m.out_block);
  while (m.z.avail_out > 0) {
    if (m.z.avail_in == 0) {
      if (m.file_eof) break;
      m.read_raw();
      if (std::ferror(m.file)) throw Error::at(path_, line_no_, "read error");
      m.z.next_in = m.in.data();
      m.z.avail_in = static_cast<uInt>(m.in.size());
      if (m.in.empty()) break;
    }
    int rc = inflate(&m.z, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      // Another gzip member may follow (concatenated files).
      if (m.z.avail_in == 0 && m.file_eof) {
        m.gz_done = true;
        break;
      }
      inflateReset(&m.z);
      continue;
    }
    if (rc == Z_BUF_ERROR && m.z.avail_in == 0) continue;
    if (rc != Z_OK)
      throw Error::at(path_, line_no_ + 1,
                      std::string("corrupt gzip data: ") + (m.z.msg ? m.z.msg : "inflate failed"));
  }
  size_t produced = m.out_block - m.z.avail_out;
  buf_.resize(old + produced);
  text_bytes_ += produced;
  if (produced == 0 && m.z.avail_in == 0 && m.file_eof) {
    eof_ = true;
    if (!m.gz_done)
      throw Error::at(path_, line_no_ + 1,
                      "truncated gzip stream (the file ends inside compressed data; "
                      "hint: re-download or re-compress it)");
    return false;
  }
  return true;
}

bool LineReader::next(std::string_view& line) {
  while (true) {
    const char* base = buf_.data();
    const void* nl = pos_ < buf_.size() ? std::memchr(base + pos_, '\n', buf_.size() - pos_) : nullptr;
    if (nl) {
      size_t end = static_cast<const char*>(nl) - base;
      line = std::string_view(base + pos_, end - pos_);
      pos_ = end + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      ++line_no_;
      return true;
    }
    if (pos_ > 0) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    if (!fill()) {
      if (buf_.empty()) return false;
      line = std::string_view(buf_);
      pos_ = buf_.size();
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      ++line_no_;
      return true;
    }
  }
}

std::string first_line(const std::string& path) {
  LineReader r(path);
  std::string_view line;
  while (r.next(line)) {
    size_t a = line.find_first_not_of(" \t");
    if (a != std::string_view::npos) return std::string(line.substr(a));
    if (r.line_no() > 1000) break;
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// Text

void append_utf8(std::string& out, uint32_t cp) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) append_utf8(out, c);
  return out;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > n || c == 0xC0 || c == 0xC1 || c > 0xF4) return false;
    uint32_t cp = c & (0x7F >> len);
    for (int k = 1; k < len; ++k) {
      unsigned char d = s[i + k];
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

std::string utf8_or_latin1(std::string_view s) {
  return valid_utf8(s) ? std::string(s) : latin1_to_utf8(s);
}

std::string clean_field(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  size_t a = out.find_first_not_of(' ');
  if (a == std::string::npos) return "";
  size_t b = out.find_last_not_of(' ');
  return out.substr(a, b - a + 1);
}

// ---------------------------------------------------------------------------------------------
// CSV

// One RFC-4180 CSV line (no embedded line breaks); false on an unbalanced quote.
bool split_csv(std::string_view line, std::vector<std::string>& out) {
  out.clear();
  std::string cur;
  size_t i = 0;
  while (true) {
    cur.clear();
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) return false;
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            cur += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        cur += line[i++];
      }
      if (i < line.size() && line[i] != ',') return false;
    } else {
      size_t c = line.find(',', i);
      size_t e = c == std::string_view::npos ? line.size() : c;
      cur.assign(line.substr(i, e - i));
      if (cur.find('"') != std::string::npos) return false;
      i = e;
    }
    out.push_back(cur);
    if (i >= line.size()) return true;
    ++i;  // the comma
    if (i == line.size()) {
      out.emplace_back();
      return true;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Object-literal scanner

namespace {

struct Scanner {
  const char* p;
  const char* end;
  Dialect d;
  std::string err;

  bool fail(const std::string& what) {
    if (err.empty()) err = what + " at column " + std::to_string(col0 ? p - col0 + 1 : 0);
    return false;
  }
  const char* col0 = nullptr;

  void ws() {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) ++p;
  }
  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool hex(int digits, uint32_t& v) {
    if (end - p < digits) return fail("truncated escape");
    v = 0;
    for (int k = 0; k < digits; ++k) {
      int h = hexval(p[k]);
      if (h < 0) return fail("bad hex digit in escape");
      v = v * 16 + h;
    }
    p += digits;
    return true;
  }

  // A string literal at p (after an optional Python u/b prefix). `out` null = skip.
  bool string(std::string* out) {
    bool unicode_prefix = false;
    if (d == Dialect::python && p < end && (*p == 'u' || *p == 'U' || *p == 'b')) {
      unicode_prefix = *p != 'b';
      ++p;
    }
    if (p >= end) return fail("expected a string");
    char q = *p;
    if (q != '"' && !(d == Dialect::python && q == '\'')) return fail("expected a string");
    ++p;
    if (!out) {  // fast skip: find the closing quote not preceded by an odd run of backslashes
      while (true) {
        const char* c = static_cast<const char*>(std::memchr(p, q, end - p));
        if (!c) return fail("unterminated string");
        const char* b = c;
        while (b > p && b[-1] == '\\') --b;
        p = c + 1;
        if (((c - b) & 1) == 0) return true;
      }
    }
    bool raw_bytes = false;  // Python 2 byte-string \xHH escapes: bytes, decoded at the end
    while (true) {
      if (p >= end) return fail("unterminated string");
      char c = *p;
      if (c == q) {
        ++p;
        break;
      }
      if (c != '\\') {
        if (d == Dialect::json && static_cast<unsigned char>(c) < 0x20)
          return fail("control character in string");
        out->push_back(c);
        ++p;
        continue;
      }
      if (++p >= end) return fail("unterminated string");
      char e = *p++;
      uint32_t v = 0;
      switch (e) {
        case '"': *out += '"'; break;
        case '\\': *out += '\\'; break;
        case '/': *out += '/'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'n': *out += '\n'; break;
        case 'r': *out += '\r'; break;
        case 't': *out += '\t'; break;
        case 'u':
          if (!hex(4, v)) return false;
          if (v >= 0xD800 && v <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            uint32_t lo = 0;
            const char* save = p;
            p += 2;
            if (!hex(4, lo)) return false;
            if (lo >= 0xDC00 && lo <= 0xDFFF)
              v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            else
              p = save;
          }
          append_utf8(*out, v);
          break;
        default:
          if (d == Dialect::json) return fail(std::string("bad escape \\") + e);
          if (e == '\'') {
            *out += '\'';
          } else if (e == 'x') {
            if (!hex(2, v)) return false;
            if (unicode_prefix) {
              append_utf8(*out, v);
            } else {
              out->push_back(static_cast<char>(v));
              raw_bytes |= v >= 0x80;
            }
          } else if (e == 'U') {
            if (!hex(8, v)) return false;
            append_utf8(*out, v);
          } else if (e == 'a') {
            *out += '\a';
          } else if (e == 'v') {
            *out += '\v';
          } else {  // Python keeps unknown escapes literally
            *out += '\\';
            *out += e;
          }
      }
    }
    if (raw_bytes && !valid_utf8(*out)) *out = latin1_to_utf8(*out);
    return true;
  }

  bool number(std::string* out) {
    const char* s = p;
    if (p < end && *p == '-') ++p;
    if (p >= end || !(*p >= '0' && *p <= '9')) return fail("bad number");
    if (*p == '0' && d == Dialect::json) {
      ++p;
    } else {
      while (p < end && *p >= '0' && *p <= '9') ++p;
    }
    if (p < end && *p == '.') {
      ++p;
      if (p >= end || !(*p >= '0' && *p <= '9')) return fail("bad number");
      while (p < end && *p >= '0' && *p <= '9') ++p;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
      ++p;
      if (p < end && (*p == '+' || *p == '-')) ++p;
      if (p >= end || !(*p >= '0' && *p <= '9')) return fail("bad number");
      while (p < end && *p >= '0' && *p <= '9') ++p;
    }
    if (d == Dialect::python && p < end && (*p == 'L' || *p == 'l')) ++p;  // Python 2 longs
    if (out) out->assign(s, p);
    return true;
  }

  bool word(const char* w) {
    size_t n = std::strlen(w);
    if (static_cast<size_t>(end - p) >= n && std::memcmp(p, w, n) == 0) {
      p += n;
      return true;
    }
    return false;
  }

  // Any value; fills `v` when non-null (strings decoded, containers only typed).
  bool value(Value* v, int depth) {
    if (depth > 64) return fail("nesting too deep");
    ws();
    if (p >= end) return fail("expected a value");
    char c = *p;
    if (c == '"' || (d == Dialect::python && (c == '\'' || ((c == 'u' || c == 'b') && p + 1 < end &&
                                                              (p[1] == '\'' || p[1] == '"'))))) {
      if (v) {
        v->kind = Value::string;
        v->text.clear();
      }
      return string(v ? &v->text : nullptr);
    }
    if (c == '{' || c == '[' || (d == Dialect::python && c == '(')) {
      if (v) v->kind = c == '{' ? Value::object : Value::array;
      return container(depth);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      if (v) v->kind = Value::number;
      return number(v ? &v->text : nullptr);
    }
    bool json = d == Dialect::json;
    if (word(json ? "true" : "True") || word(json ? "false" : "False")) {
      if (v) v->kind = Value::boolean;
      return true;
    }
    if (word(json ? "null" : "None")) {
      if (v) v->kind = Value::null;
      return true;
    }
    return fail("unexpected character '" + std::string(1, c) + "'");
  }

  bool container(int depth) {
    char open = *p++;
    char close = open == '{' ? '}' : open == '[' ? ']' : ')';
    ws();
    if (p < end && *p == close) {
      ++p;
      return true;
    }
    while (true) {
      if (open == '{') {
        ws();
        if (d == Dialect::json && (p >= end || *p != '"')) return fail("expected a string key");
        if (!value(nullptr, depth + 1)) return false;  // keys: strings (Python: any literal)
        ws();
        if (p >= end || *p != ':') return fail("expected ':'");
        ++p;
      }
      if (!value(nullptr, depth + 1)) return false;
      ws();
      if (p >= end) return fail("unterminated container");
      if (*p == ',') {
        ++p;
        ws();
        if (d == Dialect::python && p < end && *p == close) {  // trailing comma
          ++p;
          return true;
        }
        continue;
      }
      if (*p == close) {
        ++p;
        return true;
      }
      return fail(std::string("expected ',' or '") + close + "'");
    }
  }
};

}  // namespace

std::string scan_object(std::string_view line, Dialect dialect,
                        std::span<const std::string_view> keys, std::span<Value> out) {
  for (auto& v : out) v.kind = Value::absent;
  Scanner s{line.data(), line.data() + line.size(), dialect, {}};
  s.col0 = line.data();
  s.ws();
  if (s.p >= s.end || *s.p != '{') {
    s.fail("expected '{'");
    return s.err;
  }
  ++s.p;
  s.ws();
  std::string key;
  bool first = true;
  while (true) {
    s.ws();
    if (s.p < s.end && *s.p == '}' && (first || dialect == Dialect::python)) {
      ++s.p;
      break;
    }
    key.clear();
    if (!s.string(&key)) return s.err;
    s.ws();
    if (s.p >= s.end || *s.p != ':') {
      s.fail("expected ':'");
      return s.err;
    }
    ++s.p;
    Value* target = nullptr;
    for (size_t k = 0; k < keys.size(); ++k)
      if (keys[k] == key) target = &out[k];
    if (!s.value(target, 0)) return s.err;
    s.ws();
    if (s.p >= s.end) {
      s.fail("unterminated object");
      return s.err;
    }
    if (*s.p == ',') {
      ++s.p;
      first = false;
      continue;
    }
    if (*s.p == '}') {
      ++s.p;
      break;
    }
    s.fail("expected ',' or '}'");
    return s.err;
  }
  s.ws();
  if (s.p != s.end) {
    s.fail("unexpected text after the object");
    return s.err;
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// Dates

namespace {
// Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}
}  // namespace

bool parse_utc(std::string_view s, int64_t& seconds) {
  auto num = [&](size_t at, size_t len, int& v) {
    if (at + len > s.size()) return false;
    auto [ptr, ec] = std::from_chars(s.data() + at, s.data() + at + len, v);
    return ec == std::errc() && ptr == s.data() + at + len;
  };
  int y, mo, d, h = 0, mi = 0, se = 0;
  if (s.size() != 10 && s.size() != 19) return false;
  if (!num(0, 4, y) || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' || !num(8, 2, d)) return false;
  if (s.size() == 19 && (s[10] != 'T' && s[10] != ' ')) return false;
  if (s.size() == 19 && (!num(11, 2, h) || s[13] != ':' || !num(14, 2, mi) || s[16] != ':' ||
                         !num(17, 2, se)))
    return false;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap) return false;
  seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
  return true;
}

std::string format_utc(int64_t t) {
  int64_t z = (t >= 0 ? t : t - 86399) / 86400;
  int64_t secs = t - z * 86400;
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y0 = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02lld:%02lld:%02lld",
                static_cast<long long>(y0 + (m <= 2)), m, d, static_cast<long long>(secs / 3600),
                static_cast<long long>(secs / 60 % 60), static_cast<long long>(secs % 60));
  return buf;
}

}  // namespace cora::data::raw
