#include "core/compose/library.h"

#include <chrono>
#include <map>

#include "core/common/errors.h"
#include "core/compose/seeds.h"

namespace lwb::compose {

namespace {

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// Canvas positions for compositions made without the window: one row.
constexpr double kCanvasSpacing = 240;

}  // namespace

std::vector<Member> load_members(Store& store, std::span<const std::string> names, std::vector<std::int64_t>* ids) {
  std::vector<Member> members;
  if (ids) ids->clear();
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j)
      if (names[j] == names[i])
        throw ConfigError("compose.adapters", "adapter " + quoted(names[i]) + " is listed twice");
    const std::optional<std::int64_t> id = store.find_adapter(names[i]);
    if (!id)
      throw ConfigError("compose.adapters", "no adapter named " + quoted(names[i]) + " in the library of " +
                                                store.file().string());
    members.push_back({names[i], store.load_adapter(*id)});
    if (ids) ids->push_back(*id);
  }
  return members;
}

std::vector<Member> load_members(Store& store, const Composition& composition) {
  std::map<std::int64_t, std::string> names;
  for (const AdapterRow& row : store.list_adapters()) names[row.id] = row.name;
  std::vector<Member> members;
  for (std::size_t i = 0; i < composition.members.size(); ++i) {
    const std::int64_t id = composition.members[i].adapter_id;
    const auto it = names.find(id);
    if (it == names.end())
      throw StoreError(store.file().string() + ": composition " + quoted(composition.name) + ": member " +
                       std::to_string(i + 1) + " (adapter id " + std::to_string(id) +
                       ") is no longer in the adapter library; it cannot be opened without it");
    members.push_back({it->second, store.load_adapter(id)});
  }
  return members;
}

std::vector<std::string> drop_non_finite_members(std::vector<Member>& members, std::vector<std::int64_t>& ids) {
  std::vector<std::string> dropped;
  for (std::size_t i = members.size(); i-- > 0;)
    if (const std::string bad = non_finite_tensors(members[i].state); !bad.empty()) {
      const std::string& name = members[i].name;
      dropped.insert(dropped.begin(), "adapter " + quoted(name) + " skipped: " + bad);
      members.erase(members.begin() + static_cast<std::ptrdiff_t>(i));
      ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(i));
    }
  return dropped;
}

ResolvedSource base_source_for(const Member& member, const SourceEnvironment& env) {
  const std::string spec = base_spec_of(member.state);
  try {
    ResolvedSource source = resolve_base(spec, env.data_folder(), "compose.adapters");
    if (source.kind == SourceKind::Builtin) source.path = env.builtin_base(source.preset);
    return source;
  } catch (const ConfigError& e) {
    throw ConfigError("compose.adapters", "adapter " + quoted(member.name) + " was trained on base " + quoted(spec) +
                                              ", which cannot be loaded here: " + e.what());
  }
}

ComposeOutcome compose_and_store(Store& store, const ComposeRequest& request, const SourceEnvironment& env,
                                 const TrialCallback& on_trial, const std::atomic<bool>* cancel) {
  if (request.name.empty()) throw ConfigError("compose.name", "a composition needs a name");
  std::int64_t existing = 0;
  for (const CompositionRow& row : store.list_compositions())
    if (row.name == request.name) existing = row.id;
  if (existing != 0 && !request.replace)
    throw ConfigError("compose.name", "a composition named " + quoted(request.name) + " already exists in " +
                                          store.file().string() + "; choose another name");
  std::vector<std::int64_t> ids;
  std::vector<Member> members = load_members(store, request.adapters, &ids);
  const std::vector<std::string> skipped = drop_non_finite_members(members, ids);
  if (env.notice)
    for (const std::string& line : skipped) env.notice(line);
  if (members.empty())
    throw ConfigError("compose.adapters", "no member is left to compose: " + [&] {
      std::string s;
      for (const std::string& line : skipped) s += (s.empty() ? "" : "; ") + line;
      return s;
    }());
  check_members(members, request.session.mode);
  const ResolvedSource base = base_source_for(members.front(), env);

  const auto t0 = std::chrono::steady_clock::now();
  const std::string fingerprint = members.front().state.base_fingerprint;
  SeededSearch seeded = search_over_seeds(
      members, request.session, request.search, request.seeds, base,
      [&](int k, int n) {
        if (env.notice && n > 1)
          env.notice("seed " + std::to_string(k + 1) + "/" + std::to_string(n) + ": search seed " +
                     std::to_string(request.search.seed + static_cast<std::uint64_t>(k)) + ", examples drawn with seed " +
                     std::to_string(request.session.data_seed + static_cast<std::uint64_t>(k)));
      },
      on_trial ? SeedTrialCallback([&](int, const Trial& t) { on_trial(t); }) : SeedTrialCallback{}, cancel);
  ComposeOutcome out;
  out.search = std::move(seeded.first);
  out.evaluation = std::move(seeded.evaluation);
  out.cancelled = seeded.cancelled;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  Composition& c = out.composition;
  c.id = existing;
  c.name = request.name;
  c.mode = merge_mode_name(request.session.mode);
  c.optimizer = optimizer_name(request.search.optimizer);
  c.base_fingerprint = fingerprint;
  c.target_task = request.session.task;
  c.scores_json = evaluation_to_json(out.evaluation);
  for (std::size_t i = 0; i < ids.size(); ++i)
    c.members.push_back({ids[i], out.search.best_weights[i], kCanvasSpacing * static_cast<double>(i), 0});
  for (const Trial& t : out.search.trace) c.trials.push_back({t.iteration, t.weights, t.objective});
  c = store.load_composition(store.save_composition(c));
  return out;
}

}  // namespace lwb::compose
