#include "core/data/chat_tasks.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/common/errors.h"

namespace lwb::data {

namespace {

constexpr const char* kFirstNames[] = {
    "Ada",   "Bruno", "Clara", "Diego",  "Elena", "Farid", "Greta", "Hugo",  "Ines",  "Jonas",
    "Kira",  "Luca",  "Maya",  "Nils",   "Olga",  "Pavel", "Rosa",  "Sami",  "Tara",  "Umar",
    "Vera",  "Wim",   "Yara",  "Zoltan", "Amira", "Boris", "Chloe", "Dario", "Emil",  "Fiona",
    "Gavin", "Hanna", "Igor",  "Julia",  "Kenji", "Lena",  "Marco", "Nora",  "Oscar", "Petra"};
constexpr const char* kLastNames[] = {
    "Park",   "Silva",  "Novak",  "Berg",    "Costa",  "Dubois", "Engel",  "Fischer", "Garcia", "Haas",
    "Ivanov", "Jensen", "Kowal",  "Larsen",  "Moreau", "Nagy",   "Olsen",  "Petrov",  "Quinn",  "Rossi",
    "Sato",   "Tanaka", "Ueda",   "Varga",   "Weber",  "Young",  "Zeller", "Abbott",  "Brandt", "Carver",
    "Dalton", "Ellis",  "Fuller", "Grant",   "Holm",   "Ito",    "Kraus",  "Lindqvist", "Meyer", "Nolan"};
constexpr const char* kCities[] = {
    "Lisbon", "Oslo",   "Kyoto",  "Lima",    "Cairo",  "Dublin", "Prague", "Quito",  "Seoul",  "Turin",
    "Vienna", "Zurich", "Austin", "Bergen",  "Cork",   "Delft",  "Essen",  "Fresno", "Geneva", "Hanoi",
    "Izmir",  "Jaipur", "Krakow", "Leeds",   "Malmo",  "Nantes", "Porto",  "Riga",   "Split",  "Tampere"};
constexpr const char* kJobs[] = {"pianist", "chemist",  "carpenter", "pilot",     "baker",    "architect", "nurse",
                                 "painter", "engineer", "teacher",   "botanist",  "jeweller", "surgeon",   "poet",
                                 "sculptor", "tailor",  "geologist", "librarian", "photographer", "brewer"};

template <std::size_t N>
std::string pick(SplitMix& rng, const char* const (&list)[N]) {
  return list[rng.below(N)];
}

// Sentences that name the person, the birth year and a second year (a move,
// a prize), in varying order, so that neither "the first number" nor "the
// first two words" is the answer.
TaskPair person_json(SplitMix& rng) {
  const std::string name = pick(rng, kFirstNames) + " " + pick(rng, kLastNames);
  const std::string city = pick(rng, kCities), job = pick(rng, kJobs);
  const auto born = rng.between(1900, 2005);
  const auto other = rng.between(born + 18, std::min<std::int64_t>(born + 70, 2024));
  const std::string y = std::to_string(born), y2 = std::to_string(other);
  std::string sentence;
  switch (rng.below(8)) {
    case 0: sentence = name + " was born in " + city + " in " + y + " and has worked as a " + job + " since " + y2 + "."; break;
    case 1: sentence = "Born in " + y + ", " + name + " became a " + job + " in " + city + " in " + y2 + "."; break;
    case 2: sentence = "In " + y2 + ", the " + job + " " + name + " (born " + y + ") moved to " + city + "."; break;
    case 3: sentence = name + ", a " + job + " from " + city + ", was born in " + y + " and retired in " + y2 + "."; break;
    case 4: sentence = "Records from " + city + " show that " + name + " was born in " + y + " and won a prize as a " + job + " in " + y2 + "."; break;
    case 5: sentence = city + " welcomed " + name + " in " + y2 + ", a " + job + " born in " + y + "."; break;
    case 6: sentence = "Since " + y2 + ", " + name + " (" + y + ") has lived in " + city + " as a " + job + "."; break;
    default: sentence = "The " + job + " " + name + " opened a studio in " + city + " in " + y2 + "; " + name + " was born in " + y + "."; break;
  }
  return {"Give the person's name and birth year as JSON.\n" + sentence,
          "{\"name\": \"" + name + "\", \"year\": " + y + "}"};
}

struct ChatTask {
  std::string name, description;
  TaskPair (*draw)(SplitMix&);
};

const std::vector<ChatTask>& all_chat_tasks() {
  static const std::vector<ChatTask> all = {
      {"person-json", "the name and birth year in a sentence, as {\"name\": ..., \"year\": ...}", person_json},
  };
  return all;
}

const ChatTask& find_chat_task(const std::string& name) {
  for (const ChatTask& t : all_chat_tasks())
    if (t.name == name) return t;
  std::string known;
  for (const ChatTask& t : all_chat_tasks()) known += (known.empty() ? "" : ", ") + t.name;
  throw ConfigError("data.task", "unknown chat task \"" + name + "\"; known: " + known);
}

}  // namespace

const std::vector<TaskInfo>& chat_tasks() {
  static const std::vector<TaskInfo> infos = [] {
    std::vector<TaskInfo> v;
    SplitMix rng(7);
    for (const ChatTask& t : all_chat_tasks()) {
      const TaskPair p = t.draw(rng);
      v.push_back({t.name, t.description, p.prompt, p.answer});
    }
    return v;
  }();
  return infos;
}

bool is_chat_task(const std::string& name) {
  return std::any_of(all_chat_tasks().begin(), all_chat_tasks().end(), [&](const ChatTask& t) { return t.name == name; });
}

TaskSplits chat_task_splits(const std::string& task, int n_train, int n_heldout, std::uint64_t seed, int n_validation) {
  return draw_task_splits(task, find_chat_task(task).draw, n_train, n_heldout, seed, n_validation);
}

Dataset make_chat_task_dataset(const std::string& task, const Tokenizer& tok, const JsonlOptions& options,
                               int max_tokens, int n_train, int n_heldout, std::uint64_t seed, int n_validation) {
  const TaskSplits s = chat_task_splits(task, n_train, n_heldout, seed, n_validation);
  Dataset d;
  d.name = "task:" + task;
  d.has_completions = true;
  auto render = [&](const std::vector<TaskPair>& pairs, const char* split, std::vector<Example>& out) {
    out.reserve(pairs.size());
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      Record r;
      r.format = JsonlFormat::PromptCompletion;
      r.prompt = pairs[i].prompt;
      r.completion = pairs[i].answer;
      const std::string where = "task " + task + " " + split + " example " + std::to_string(i + 1);
      Example e = render_record(r, tok, options, where).example;
      if (static_cast<int>(e.tokens.size()) > max_tokens)
        throw DataError(where + " has " + std::to_string(e.tokens.size()) + " tokens, more than the " +
                        std::to_string(max_tokens) + " a sequence holds (train.seq_len + 1); raise train.seq_len");
      out.push_back(std::move(e));
    }
  };
  render(s.validation, "validation", d.validation);
  render(s.heldout, "held-out", d.heldout);
  render(s.train, "train", d.train);
  return d;
}

std::string task_pairs_jsonl(const std::vector<TaskPair>& pairs) {
  std::string out;
  for (const TaskPair& p : pairs) out += nlohmann::json{{"prompt", p.prompt}, {"completion", p.answer}}.dump() + "\n";
  return out;
}

}  // namespace lwb::data
