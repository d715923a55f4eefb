#include "switch/switch.hpp"

#include <stdexcept>

#include "switch/worker.hpp"

namespace ms::sw {

Switch::Switch(Nic& nic, SwitchConfig config)
    : nic_(nic),
      nic_mac_(nic.mac()),
      config_(config),
      registry_(config.workers),
      failed_(std::make_unique<std::atomic<bool>[]>(config.max_ports)),
      nic_stats_(std::make_unique<RingStats[]>(nic.queue_count())) {
    if (config_.workers == 0) throw std::invalid_argument("a switch needs at least one worker");
    if (config_.max_ports == 0 || config_.max_ports > kMaxPorts) {
        throw std::invalid_argument("max ports must be 1.." + std::to_string(kMaxPorts));
    }
    if (config_.batch == 0 || config_.batch > kMaxBatch) {
        throw std::invalid_argument("batch must be 1.." + std::to_string(kMaxBatch));
    }
    for (std::uint32_t w = 0; w < config_.workers; ++w) workers_.push_back(std::make_unique<Worker>(*this, w));
    for (std::size_t q = 0; q < nic.queue_count(); ++q) workers_[q % config_.workers]->own_nic_queue(q);
}

Switch::~Switch() { stop(); }

PortId Switch::add_port(const PortConfig& config) {
    if (started_) throw std::logic_error("ports are added before the switch starts");
    if (ports_.size() >= config_.max_ports) {
        throw std::length_error("switch is full: " + std::to_string(config_.max_ports) + " ports");
    }
    const auto id = static_cast<PortId>(ports_.size());
    auto port = std::make_unique<Port>(id, ring::Region::create(config.ring_pairs, config.slots_per_ring), failed_[id]);
    for (std::uint32_t pair = 0; pair < config.ring_pairs; ++pair) {
        const std::uint32_t owner = (id + pair) % config_.workers;
        port->rings.push_back(std::make_unique<PortRing>(port->region, id, pair, owner));
        workers_[owner]->own_ring(*port->rings.back());
    }
    ports_.push_back(std::move(port));
    return id;
}

void Switch::build_destinations() {
    destinations_.clear();
    for (std::size_t q = 0; q < nic_.queue_count(); ++q) {
        destinations_.push_back(Destination{nullptr, nullptr, &nic_.queue(q), &nic_stats_[q],
                                            static_cast<std::uint32_t>(q % config_.workers)});
    }
    routes_.clear();
    for (auto& port : ports_) {
        routes_.push_back({static_cast<std::uint32_t>(destinations_.size()), static_cast<std::uint32_t>(port->rings.size())});
        for (auto& r : port->rings) {
            destinations_.push_back(Destination{port.get(), r.get(), nullptr, &r->stats, r->owner});
        }
    }
}

void Switch::start() {
    if (started_) return;
    if (nic_.queue_count() == 0) throw std::invalid_argument("the NIC has no queues");
    build_destinations();
    for (auto& w : workers_) {
        std::vector<FrameQueue*> outboxes(workers_.size(), nullptr);
        for (std::uint32_t to = 0; to < workers_.size(); ++to) {
            if (workers_[to].get() != w.get()) outboxes[to] = workers_[to]->inbox(static_cast<std::uint32_t>(&w - workers_.data()));
        }
        w->connect(std::move(outboxes));
    }
    started_ = true;
    for (auto& w : workers_) threads_.emplace_back([&w] { w->run(); });
}

void Switch::stop() {
    for (auto& w : workers_) w->request_stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
}

StatsSnapshot Switch::port_stats(PortId id) const {
    StatsSnapshot s;
    for (const auto& r : ports_.at(id)->rings) s.add(r->stats);
    return s;
}

StatsSnapshot Switch::nic_stats() const {
    StatsSnapshot s;
    for (std::size_t q = 0; q < nic_.queue_count(); ++q) s.add(nic_stats_[q]);
    return s;
}

StatsSnapshot Switch::handoff_stats() const {
    StatsSnapshot s;
    for (const auto& w : workers_) s.add(w->handoff_stats());
    return s;
}

}  // namespace ms::sw
