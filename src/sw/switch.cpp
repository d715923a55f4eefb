#include "sw/switch.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "sw/worker.hpp"

namespace ms::sw {
namespace {

base::Result<base::Done, SwitchFailure> check_config(const SwitchConfig& c, const Nic& nic) {
    if (c.workers == 0) return SwitchFailure{SwitchError::no_workers, "a switch needs at least one worker"};
    if (c.max_ports == 0 || c.max_ports > kMaxPorts) {
        return SwitchFailure{SwitchError::bad_max_ports, "max ports must be 1.." + std::to_string(kMaxPorts)};
    }
    if (c.max_ring_pairs == 0 || c.max_ring_pairs > ring::kMaxRingPairs) {
        return SwitchFailure{SwitchError::bad_ring_pairs, "max ring pairs must be 1.." + std::to_string(ring::kMaxRingPairs)};
    }
    if (c.batch == 0 || c.batch > kMaxBatch) {
        return SwitchFailure{SwitchError::bad_batch, "batch must be 1.." + std::to_string(kMaxBatch)};
    }
    if (nic.queue_count() == 0) return SwitchFailure{SwitchError::no_nic_queues, "the NIC has no queues"};
    return base::Done{};
}

}  // namespace

base::Result<std::unique_ptr<Switch>, SwitchFailure> Switch::create(Nic& nic, SwitchConfig config) {
    if (auto checked = check_config(config, nic); !checked) return checked.error();
    std::unique_ptr<Switch> sw(new Switch(nic, config));
    for (std::uint32_t w = 0; w < config.workers; ++w) {
        std::vector<std::size_t> queues;  // NIC queue q belongs to worker q % workers
        for (std::size_t q = w; q < nic.queue_count(); q += config.workers) queues.push_back(q);
        auto worker = Worker::create(*sw, w, std::move(queues));
        if (!worker) return worker.error();
        sw->workers_.push_back(std::move(worker.value()));
    }
    sw->topology_.update([&sw](const Topology&) { return sw->build_topology(); });
    return sw;
}

Switch::Switch(Nic& nic, SwitchConfig config)
    : nic_(nic),
      tx_link_{nic.mac(), std::min(config.mtu, ring::kMaxFrameSize - 18)},
      config_(config),
      qsbr_(config.workers),
      registry_(qsbr_),
      ports_(config.max_ports),
      failed_(std::make_unique<std::atomic<bool>[]>(config.max_ports)),
      nic_stats_(std::make_unique<RingStats[]>(nic.queue_count())),
      topology_(qsbr_, std::make_shared<const Topology>()) {}

Switch::~Switch() { stop(); }

std::shared_ptr<const Topology> Switch::build_topology() const {
    auto t = std::make_shared<Topology>();
    const std::size_t queues = nic_.queue_count();
    t->destinations.resize(queues + std::size_t{config_.max_ports} * config_.max_ring_pairs);
    for (std::size_t q = 0; q < queues; ++q) {
        t->destinations[q] = Destination{nullptr, nullptr, &nic_.queue(q), &nic_stats_[q], nic_queue_worker(q)};
    }
    t->routes.resize(config_.max_ports);
    t->rings_by_worker.resize(config_.workers);
    for (const auto& port : ports_) {
        if (!port) continue;
        const std::uint32_t first = first_dest(port->id);
        t->routes[port->id] = PortRoute{first, static_cast<std::uint32_t>(port->rings.size())};
        for (const auto& r : port->rings) {
            t->destinations[first + r->pair] = Destination{port.get(), r.get(),  nullptr,
                                                           &r->stats,  r->owner, port->generation};
            t->rings_by_worker[r->owner].push_back(r.get());
        }
    }
    return t;
}

base::Result<PortId, SwitchFailure> Switch::attach_port(const PortConfig& config) {
    if (config.ring_pairs == 0 || config.ring_pairs > config_.max_ring_pairs) {
        return SwitchFailure{SwitchError::port_geometry, "ring pairs must be 1.." + std::to_string(config_.max_ring_pairs)};
    }
    std::lock_guard lock(control_);
    PortId id = 0;
    while (id < ports_.size() && ports_[id]) ++id;
    if (id == ports_.size()) {
        return SwitchFailure{SwitchError::full, "switch is full: " + std::to_string(config_.max_ports) + " ports"};
    }
    auto region = ring::Region::create(config.ring_pairs, config.slots_per_ring, config.data_bytes, config_.huge_pages);
    if (!region) {
        const bool geometry = region.error().error == ring::RegionError::bad_geometry;
        return SwitchFailure{geometry ? SwitchError::port_geometry : SwitchError::port_memory, region.error().detail};
    }
    failed_[id].store(false, std::memory_order_relaxed);
    return install_port(std::make_unique<Port>(id, ++generations_, std::move(region).value(), failed_[id]), config.ring_pairs,
                        nullptr);
}

namespace {
void close_ring_descriptors(const std::vector<PortState::RingPair>& rings) {
    for (const auto& r : rings) {
        ::close(r.to_switch_fd);
        ::close(r.to_app_fd);
    }
}
}  // namespace

base::Result<PortId, SwitchFailure> Switch::adopt_port(PortState state) {
    std::lock_guard lock(control_);
    const PortId id = state.id;
    auto region = ring::Region::map(std::exchange(state.region_fd, -1));
    if (id >= ports_.size() || ports_[id] || !region || region->layout().ring_pairs != state.rings.size() ||
        state.rings.empty() || state.rings.size() > config_.max_ring_pairs) {
        close_ring_descriptors(state.rings);
        const bool taken = id < ports_.size() && ports_[id];
        return SwitchFailure{id >= ports_.size() || taken ? SwitchError::full : SwitchError::port_geometry,
                             "handed-over port " + std::to_string(id) + ": " +
                                 (!region ? region.error().detail : "its id or ring pairs do not fit this switch")};
    }
    failed_[id].store(state.failed, std::memory_order_relaxed);
    generations_ = std::max(generations_, state.generation);
    const auto ring_pairs = static_cast<std::uint32_t>(state.rings.size());
    return install_port(std::make_unique<Port>(id, state.generation, std::move(region).value(), failed_[id]), ring_pairs,
                        &state.rings);
}

base::Result<PortId, SwitchFailure> Switch::install_port(std::unique_ptr<Port> port, std::uint32_t ring_pairs,
                                                         std::vector<PortState::RingPair>* handed_over) {
    const PortId id = port->id;
    auto unwatch_all = [&] {
        for (const auto& r : port->rings) workers_[r->owner]->unwatch(r->to_switch.fd());
    };
    for (std::uint32_t pair = 0; pair < ring_pairs; ++pair) {
        const std::uint32_t owner = (id + pair) % config_.workers;
        port->rings.push_back(std::make_unique<PortRing>(*port, port->region, id, pair, owner));
        PortRing& made = *port->rings.back();
        if (handed_over) {
            PortState::RingPair& given = (*handed_over)[pair];
            made.to_switch = ring::EventFd(std::exchange(given.to_switch_fd, -1));
            made.to_app = ring::EventFd(std::exchange(given.to_app_fd, -1));
            carry_on(made.stats, given.stats);
            if (!made.tx.restore(given.tx) || !made.rx.restore(given.rx)) port->failed.store(true);
        }
        if (!made.to_switch.is_open() || !made.to_app.is_open()) {
            const int error = errno;
            unwatch_all();
            if (handed_over) close_ring_descriptors(*handed_over);
            return SwitchFailure{SwitchError::port_memory, std::string("eventfd: ") + std::strerror(error)};
        }
        if (config_.fault.active())
            made.fault = std::make_unique<FaultInjector>(config_.fault, std::uint64_t{id} << 8 | pair);
        if (auto watched = workers_[owner]->watch(made.to_switch.fd()); !watched) {
            port->rings.pop_back();  // not watched: only the ones before it are
            unwatch_all();
            if (handed_over) close_ring_descriptors(*handed_over);
            return watched.error();
        }
    }
    Port& attached = *port;
    ports_[id] = std::move(port);
    topology_.update([this](const Topology&) { return build_topology(); });
    // Owners that sleep must re-read the topology and arm the new rings' kick flags.
    for (const auto& r : attached.rings) workers_[r->owner]->kick();
    return id;
}

std::vector<PortState> Switch::hand_over_ports() const {
    std::lock_guard lock(control_);
    std::vector<PortState> out;
    for (const auto& port : ports_) {
        if (!port) continue;
        PortState st{port->id, port->generation, port->is_failed(), port->region.fd(), {}};
        for (const auto& r : port->rings) {
            StatsSnapshot stats;
            stats.add(r->stats);
            st.rings.push_back({r->to_switch.fd(), r->to_app.fd(), r->tx.indices(), r->rx.indices(), stats});
        }
        out.push_back(std::move(st));
    }
    return out;
}

bool Switch::detach_port(PortId id) {
    std::lock_guard lock(control_);
    if (id >= ports_.size() || !ports_[id]) return false;
    registry_.remove_port(id);
    stop_capture_locked(id);
    std::unique_ptr<Port> port = std::move(ports_[id]);
    // After this returns no worker holds the old topology, so none can touch the port.
    topology_.update([this](const Topology&) { return build_topology(); });
    for (const auto& r : port->rings) workers_[r->owner]->unwatch(r->to_switch.fd());
    return true;
}

std::optional<Switch::CaptureTicket> Switch::start_capture(PortId id, std::uint32_t depth) {
    std::lock_guard lock(control_);
    if (id >= ports_.size() || !ports_[id] || captures_.contains(id)) return std::nullopt;
    Capture& cap = captures_[id];
    cap.ticket = ++capture_tickets_;
    for (const auto& r : ports_[id]->rings) {
        cap.queues.push_back(std::make_unique<FrameQueue>(depth));
        cap.overflows_at_start += r->tap_overflows.get();
        r->tap.store(cap.queues.back().get(), std::memory_order_release);
    }
    return CaptureTicket{id, cap.ticket};
}

const Switch::Capture* Switch::find_capture(const CaptureTicket& t) const {
    auto it = captures_.find(t.port);
    return it != captures_.end() && it->second.ticket == t.id ? &it->second : nullptr;
}

bool Switch::capture_running(const CaptureTicket& t) const {
    std::lock_guard lock(control_);
    return find_capture(t) != nullptr;
}

std::size_t Switch::drain_capture(const CaptureTicket& t, const std::function<void(wire::Bytes, TapDirection)>& sink) {
    std::lock_guard lock(control_);
    const Capture* cap = find_capture(t);
    if (!cap) return 0;
    std::size_t n = 0;
    for (const auto& q : cap->queues) {
        const std::uint32_t ready = q->available();
        for (std::uint32_t k = 0; k < ready; ++k) {
            const FrameCell& c = q->consumer_cell(k);
            const std::optional<wire::Bytes> frame = c.frame();
            if (!frame || c.tag > static_cast<std::uint32_t>(TapDirection::from_application)) continue;
            sink(*frame, static_cast<TapDirection>(c.tag));
        }
        q->release(ready);
        n += ready;
    }
    return n;
}

std::uint64_t Switch::capture_overflows(const CaptureTicket& t) const {
    std::lock_guard lock(control_);
    const Capture* cap = find_capture(t);
    if (!cap) return 0;
    std::uint64_t now = 0;
    for (const auto& r : ports_[t.port]->rings) now += r->tap_overflows.get();
    return now - cap->overflows_at_start;
}

void Switch::stop_capture(const CaptureTicket& t) {
    std::lock_guard lock(control_);
    if (find_capture(t)) stop_capture_locked(t.port);
}

void Switch::stop_capture_locked(PortId id) {
    auto it = captures_.find(id);
    if (it == captures_.end()) return;
    for (const auto& r : ports_[id]->rings) r->tap.store(nullptr, std::memory_order_release);
    qsbr_.synchronize();  // no worker still copies into the queues
    captures_.erase(it);
}

bool Switch::has_port(PortId id) const {
    std::lock_guard lock(control_);
    return id < ports_.size() && ports_[id];
}

Port& Switch::port(PortId id) {
    std::lock_guard lock(control_);
    if (id >= ports_.size() || !ports_[id]) {
        std::fprintf(stderr, "multistack: Switch::port(%u): no such port (a caller skipped has_port)\n", id);
        std::abort();  // a broken precondition, as an out-of-range index would be
    }
    return *ports_[id];
}

std::vector<PortId> Switch::port_ids() const {
    std::lock_guard lock(control_);
    std::vector<PortId> ids;
    for (const auto& p : ports_) {
        if (p) ids.push_back(p->id);
    }
    return ids;
}

void Switch::start() {
    if (started_) return;
    for (std::uint32_t self = 0; self < workers_.size(); ++self) {
        std::vector<FrameQueue*> outboxes(workers_.size(), nullptr);
        for (std::uint32_t to = 0; to < workers_.size(); ++to) {
            if (to != self) outboxes[to] = workers_[to]->inbox(self);
        }
        workers_[self]->connect(std::move(outboxes));
    }
    started_ = true;
    for (auto& w : workers_) threads_.emplace_back([&w] { w->run(); });
}

void Switch::stop() {
    for (auto& w : workers_) w->request_stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    for (auto& w : workers_) w->clear_stop();
    started_ = false;
}

StatsSnapshot Switch::port_stats(PortId id) const {
    std::lock_guard lock(control_);
    StatsSnapshot s;
    if (id < ports_.size() && ports_[id]) {
        for (const auto& r : ports_[id]->rings) s.add(r->stats);
    }
    return s;
}

StatsSnapshot Switch::nic_stats() const {
    StatsSnapshot s;
    for (std::size_t q = 0; q < nic_.queue_count(); ++q) s.add(nic_stats_[q]);
    return s;
}

StatsSnapshot Switch::nic_queue_stats(std::size_t q) const {
    StatsSnapshot s;
    s.add(nic_stats_[q]);
    return s;
}

StatsSnapshot Switch::handoff_stats() const {
    StatsSnapshot s;
    for (const auto& w : workers_) s.add(w->handoff_stats());
    return s;
}

}  // namespace ms::sw
