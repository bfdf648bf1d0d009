#include "trellis/check/history_file.h"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "trellis/base/assert.h"

namespace trellis::check {
namespace {

constexpr std::size_t kFields = 9;

struct KindName {
  Operation::Kind kind;
  std::string_view name;
};
constexpr KindName kKinds[] = {
    {Operation::Kind::kRead, "read"},       {Operation::Kind::kWrite, "write"},
    {Operation::Kind::kCas, "cas"},         {Operation::Kind::kAppend, "append"},
    {Operation::Kind::kEnqueue, "enqueue"}, {Operation::Kind::kDequeue, "dequeue"},
};

std::vector<std::string_view> split(std::string_view line, char separator) {
  std::vector<std::string_view> out;
  for (std::size_t start = 0;;) {
    const std::size_t end = line.find(separator, start);
    out.push_back(line.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

std::uint64_t parse_number(std::string_view text, std::size_t line_number) {
  if (text.empty() || text.size() > 19) {
    throw std::invalid_argument("history line " + std::to_string(line_number) + ": bad number '" +
                                std::string(text) + "'");
  }
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      throw std::invalid_argument("history line " + std::to_string(line_number) + ": bad number '" +
                                  std::string(text) + "'");
    }
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

Operation parse_operation(std::string_view line, std::size_t line_number) {
  const std::vector<std::string_view> f = split(line, '\t');
  if (f.size() != kFields) {
    throw std::invalid_argument("history line " + std::to_string(line_number) + ": " +
                                std::to_string(f.size()) + " fields, expected " +
                                std::to_string(kFields));
  }
  Operation op;
  const std::uint64_t client = parse_number(f[0], line_number);
  if (client > UINT32_MAX) {
    throw std::invalid_argument("history line " + std::to_string(line_number) +
                                ": client id too large");
  }
  op.client = static_cast<std::uint32_t>(client);
  op.invoked = parse_number(f[1], line_number);
  if (f[2] != "?") op.completed = parse_number(f[2], line_number);
  bool known_kind = false;
  for (const KindName& k : kKinds) {
    if (f[3] == k.name) {
      op.kind = k.kind;
      known_kind = true;
    }
  }
  if (!known_kind) {
    throw std::invalid_argument("history line " + std::to_string(line_number) +
                                ": unknown operation '" + std::string(f[3]) + "'");
  }
  op.key = f[4];
  op.value = f[5];
  op.expected = f[6];
  op.output = f[7];
  if (f[8] != "0" && f[8] != "1") {
    throw std::invalid_argument("history line " + std::to_string(line_number) +
                                ": ok must be 0 or 1");
  }
  op.ok = f[8] == "1";
  return op;
}

}  // namespace

HistoryFile parse_history_file(std::string_view text) {
  HistoryFile out;
  std::size_t line_number = 0;
  for (std::string_view line : split(text, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    if (line.starts_with("model ")) {
      out.model = line.substr(6);
    } else if (line.starts_with("initial ")) {
      out.initial = line.substr(8);
    } else if (line.starts_with("expect ")) {
      const std::string_view v = line.substr(7);
      if (v == "linearizable") {
        out.expect = Verdict::kLinearizable;
      } else if (v == "not-linearizable") {
        out.expect = Verdict::kNotLinearizable;
      } else {
        throw std::invalid_argument("history line " + std::to_string(line_number) +
                                    ": unknown verdict '" + std::string(v) + "'");
      }
    } else {
      out.operations.push_back(parse_operation(line, line_number));
    }
  }
  TRELLIS_ASSERT(line_number > 0);
  return out;
}

HistoryFile read_history_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read history file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_history_file(text.str());
}

std::string format_history_file(const HistoryFile& file) {
  std::string out = "model " + file.model + "\n";
  if (!file.initial.empty()) out += "initial " + file.initial + "\n";
  if (file.expect) {
    out += *file.expect == Verdict::kLinearizable ? "expect linearizable\n"
                                                  : "expect not-linearizable\n";
  }
  for (const Operation& op : file.operations) {
    std::string_view kind;
    for (const KindName& k : kKinds) {
      if (k.kind == op.kind) kind = k.name;
    }
    TRELLIS_ASSERT(!kind.empty());
    out.append(std::to_string(op.client)).append("\t").append(std::to_string(op.invoked));
    out.append("\t").append(op.completed ? std::to_string(*op.completed) : "?");
    out.append("\t").append(kind).append("\t").append(op.key).append("\t").append(op.value);
    out.append("\t").append(op.expected).append("\t").append(op.output);
    out.append(op.ok ? "\t1\n" : "\t0\n");
  }
  return out;
}

std::unique_ptr<Model> make_model(std::string_view name, const std::string& initial) {
  if (name == "register") return std::make_unique<RegisterModel>(initial);
  if (name == "cas-register") return std::make_unique<CasRegisterModel>(initial);
  if (name == "kv-append") {
    if (!initial.empty()) throw std::invalid_argument("the kv-append model starts empty");
    return std::make_unique<KvAppendModel>();
  }
  if (name == "queue") {
    if (!initial.empty()) throw std::invalid_argument("the queue model starts empty");
    return std::make_unique<QueueModel>();
  }
  throw std::invalid_argument("unknown model '" + std::string(name) + "'");
}

}  // namespace trellis::check
