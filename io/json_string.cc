#include "io/json_string.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace cachefs {

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out += '"';
  return out;
}

namespace {

void SkipSpace(std::string_view text, size_t* i) {
  while (*i < text.size() && (text[*i] == ' ' || text[*i] == '\t' ||
                              text[*i] == '\n' || text[*i] == '\r')) {
    ++*i;
  }
}

// The string starting at text[*i] == '"', unescaped; *i ends past it.
absl::StatusOr<std::string> ParseString(std::string_view text, size_t* i) {
  std::string out;
  for (++*i; *i < text.size(); ++*i) {
    char c = text[*i];
    if (c == '"') {
      ++*i;
      return out;
    }
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++*i == text.size()) break;
    switch (text[*i]) {
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'u': {
        if (*i + 4 >= text.size())
          return absl::InvalidArgumentError("a cut \\u escape");
        const std::string hex(text.substr(*i + 1, 4));
        char* end = nullptr;
        long code = std::strtol(hex.c_str(), &end, 16);
        if (end != hex.c_str() + 4 || code > 0xff) {
          return absl::InvalidArgumentError("a \\u escape past one byte: " +
                                            hex);
        }
        out.push_back(static_cast<char>(code));
        *i += 4;
        break;
      }
      default:
        out.push_back(text[*i]);  // '"', '\\', '/'
    }
  }
  return absl::InvalidArgumentError("an unterminated string");
}

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
ParseFlatJsonObject(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> members;
  size_t i = 0;
  SkipSpace(text, &i);
  if (i == text.size() || text[i] != '{') {
    return absl::InvalidArgumentError("not a JSON object");
  }
  ++i;
  SkipSpace(text, &i);
  if (i < text.size() && text[i] == '}') return members;
  while (i < text.size()) {
    SkipSpace(text, &i);
    if (i == text.size() || text[i] != '"') {
      return absl::InvalidArgumentError(
          absl::StrCat("a member name expected at ", i));
    }
    absl::StatusOr<std::string> name = ParseString(text, &i);
    if (!name.ok()) return name.status();
    SkipSpace(text, &i);
    if (i == text.size() || text[i] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("':' expected at ", i));
    }
    ++i;
    SkipSpace(text, &i);
    if (i == text.size()) break;
    std::string value;
    if (text[i] == '"') {
      absl::StatusOr<std::string> s = ParseString(text, &i);
      if (!s.ok()) return s.status();
      value = *std::move(s);
    } else if (text[i] == '{' || text[i] == '[') {
      return absl::InvalidArgumentError("a nested object or array");
    } else {
      size_t start = i;
      while (i < text.size() && text[i] != ',' && text[i] != '}' &&
             text[i] != ' ' && text[i] != '\n') {
        ++i;
      }
      value = std::string(text.substr(start, i - start));
      if (value.empty()) return absl::InvalidArgumentError("an empty value");
    }
    members.emplace_back(*std::move(name), std::move(value));
    SkipSpace(text, &i);
    if (i < text.size() && text[i] == ',') {
      ++i;
      continue;
    }
    if (i < text.size() && text[i] == '}') return members;
    break;
  }
  return absl::InvalidArgumentError("an unterminated object");
}

}  // namespace cachefs
