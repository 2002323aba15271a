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

namespace {

constexpr int kMaxDepth = 64;

absl::StatusOr<JsonValue> ParseValue(std::string_view text, size_t* i,
                                     int depth) {
  if (depth > kMaxDepth) return absl::InvalidArgumentError("nested too deep");
  SkipSpace(text, i);
  if (*i == text.size()) return absl::InvalidArgumentError("a value expected");
  JsonValue value;
  const char c = text[*i];
  if (c == '"') {
    absl::StatusOr<std::string> s = ParseString(text, i);
    if (!s.ok()) return s.status();
    value.kind = JsonValue::Kind::kString;
    value.text = *std::move(s);
    return value;
  }
  if (c == '{' || c == '[') {
    const bool object = c == '{';
    const char close = object ? '}' : ']';
    value.kind = object ? JsonValue::Kind::kObject : JsonValue::Kind::kArray;
    ++*i;
    SkipSpace(text, i);
    if (*i < text.size() && text[*i] == close) {
      ++*i;
      return value;
    }
    while (true) {
      std::string name;
      if (object) {
        SkipSpace(text, i);
        if (*i == text.size() || text[*i] != '"') {
          return absl::InvalidArgumentError(
              absl::StrCat("a member name expected at ", *i));
        }
        absl::StatusOr<std::string> n = ParseString(text, i);
        if (!n.ok()) return n.status();
        name = *std::move(n);
        SkipSpace(text, i);
        if (*i == text.size() || text[*i] != ':') {
          return absl::InvalidArgumentError(
              absl::StrCat("':' expected at ", *i));
        }
        ++*i;
      }
      absl::StatusOr<JsonValue> item = ParseValue(text, i, depth + 1);
      if (!item.ok()) return item.status();
      if (object) {
        value.names.push_back(std::move(name));
        value.values.push_back(*std::move(item));
      } else {
        value.items.push_back(*std::move(item));
      }
      SkipSpace(text, i);
      if (*i < text.size() && text[*i] == ',') {
        ++*i;
        continue;
      }
      if (*i < text.size() && text[*i] == close) {
        ++*i;
        return value;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("an unterminated ", object ? "object" : "array"));
    }
  }
  // A number, true, false or null: kept as written.
  const size_t start = *i;
  while (*i < text.size() && text[*i] != ',' && text[*i] != '}' &&
         text[*i] != ']' && text[*i] != ' ' && text[*i] != '\n' &&
         text[*i] != '\t' && text[*i] != '\r') {
    ++*i;
  }
  value.text = std::string(text.substr(start, *i - start));
  if (value.text == "true" || value.text == "false") {
    value.kind = JsonValue::Kind::kBool;
  } else if (value.text == "null") {
    value.kind = JsonValue::Kind::kNull;
  } else {
    char* end = nullptr;
    std::strtod(value.text.c_str(), &end);
    if (value.text.empty() || end != value.text.c_str() + value.text.size()) {
      return absl::InvalidArgumentError("not a JSON value: " + value.text);
    }
    value.kind = JsonValue::Kind::kNumber;
  }
  return value;
}

}  // namespace

const JsonValue* JsonValue::Find(std::string_view name) const {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return &values[i];
  }
  return nullptr;
}

absl::StatusOr<JsonValue> ParseJson(std::string_view text) {
  size_t i = 0;
  absl::StatusOr<JsonValue> value = ParseValue(text, &i, 0);
  if (!value.ok()) return value.status();
  SkipSpace(text, &i);
  if (i != text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("text after the value at ", i));
  }
  return value;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
ParseFlatJsonObject(std::string_view text) {
  absl::StatusOr<JsonValue> value = ParseJson(text);
  if (!value.ok()) return value.status();
  if (value->kind != JsonValue::Kind::kObject) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  std::vector<std::pair<std::string, std::string>> members;
  for (size_t i = 0; i < value->names.size(); ++i) {
    JsonValue& member = value->values[i];
    if (member.kind == JsonValue::Kind::kObject ||
        member.kind == JsonValue::Kind::kArray) {
      return absl::InvalidArgumentError("a nested object or array");
    }
    members.emplace_back(value->names[i], std::move(member.text));
  }
  return members;
}

}  // namespace cachefs
