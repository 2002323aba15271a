// JSON text for the project's --json outputs (cachefs-ctl, the control
// socket's replies, the trace stream, cachefs-cullsim): one way to quote a
// string, so that every output escapes the same characters.

#ifndef CACHEFS_IO_JSON_STRING_H_
#define CACHEFS_IO_JSON_STRING_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace cachefs {

// `s` as a JSON string, quotes included. Bytes are passed through as they
// are (file names are bytes, not always UTF-8); '"', '\\' and control
// characters are escaped.
std::string JsonString(std::string_view s);

// A parsed JSON value. Strings are unescaped; numbers, true, false and
// null keep their text as written.
struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  std::string text;
  std::vector<JsonValue> items;  // an array's
  // An object's members: names[i] is values[i]'s. (Two vectors: a pair
  // holding the class itself would need it complete.)
  std::vector<std::string> names;
  std::vector<JsonValue> values;
  // The member `name` of an object, or null.
  const JsonValue* Find(std::string_view name) const;
};

// One JSON value, and nothing but space after it.
absl::StatusOr<JsonValue> ParseJson(std::string_view text);

// The members of one flat JSON object (`{"a": 1, "b": "x"}`, as the
// project's --json outputs write them), in order: names, and values with
// strings unquoted and numbers, true, false and null as written. Nested
// objects and arrays are refused.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
ParseFlatJsonObject(std::string_view text);

}  // namespace cachefs

#endif  // CACHEFS_IO_JSON_STRING_H_
