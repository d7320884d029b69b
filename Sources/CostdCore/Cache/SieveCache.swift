/// A byte-bounded cache with per-entry expiry and SIEVE eviction.
///
/// SIEVE (Zhang et al., NSDI '24) keeps a FIFO queue and one "visited" bit per entry. A hit only
/// sets the bit, so reads never reorder anything; when space is needed, a hand walks from the
/// oldest entry towards the newest, clearing bits, and evicts the first entry it finds
/// unvisited. Entries that are read again survive, one-hit wonders leave first: hot entries
/// stay, as with LRU, but with less work per hit and better resistance to scans.
///
/// Not thread-safe; ``L1Cache`` shards it behind locks.
public struct SieveCache: Sendable {
    /// Bookkeeping bytes charged per entry on top of the value and namespace bytes (the node,
    /// the hash-table slot and allocator overhead), so the byte bound tracks real memory.
    public static let entryOverhead = 96

    struct Node: Sendable {
        var key: CacheKey
        var value: [UInt8]
        var namespace: String
        var expiresAt: UInt64
        var visited: Bool
        var newer: Int32  // towards the head (newest)
        var older: Int32  // towards the tail (oldest)

        var cost: Int { value.count + namespace.utf8.count + SieveCache.entryOverhead }
    }

    public struct Entry: Sendable {
        public var value: [UInt8]
        public var expiresAt: UInt64
    }

    public let capacityBytes: Int
    public private(set) var usedBytes = 0
    public private(set) var evictions: UInt64 = 0
    public private(set) var expirations: UInt64 = 0

    private var nodes: ContiguousArray<Node> = []
    private var freeSlots: [Int32] = []
    private var slotByKey: [CacheKey: Int32] = [:]
    private var head: Int32 = -1  // newest
    private var tail: Int32 = -1  // oldest
    private var hand: Int32 = -1

    public init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    public var count: Int { slotByKey.count }

    /// The live entry for `key`, marking it visited; an expired entry is dropped and missed.
    public mutating func get(_ key: CacheKey, now: UInt64) -> Entry? {
        guard let slot = slotByKey[key] else { return nil }
        let index = Int(slot)
        if nodes[index].expiresAt <= now {
            remove(slot: slot)
            expirations += 1
            return nil
        }
        nodes[index].visited = true
        return Entry(value: nodes[index].value, expiresAt: nodes[index].expiresAt)
    }

    /// Stores `value` until `expiresAt`, evicting as needed. Returns false when the entry alone
    /// is larger than the whole cache (it is then not stored, and any older value is dropped).
    @discardableResult
    public mutating func set(
        _ key: CacheKey, value: [UInt8], namespace: String, expiresAt: UInt64, now: UInt64
    ) -> Bool {
        if let slot = slotByKey[key] { remove(slot: slot) }
        let node = Node(
            key: key, value: value, namespace: namespace, expiresAt: expiresAt, visited: false, newer: -1, older: -1
        )
        guard node.cost <= capacityBytes else { return false }
        while usedBytes + node.cost > capacityBytes {
            evictOne(now: now)
        }
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            nodes[Int(slot)] = node
        } else {
            slot = Int32(nodes.count)
            nodes.append(node)
        }
        // Insert at the head.
        nodes[Int(slot)].older = head
        if head >= 0 { nodes[Int(head)].newer = slot }
        head = slot
        if tail < 0 { tail = slot }
        slotByKey[key] = slot
        usedBytes += node.cost
        return true
    }

    @discardableResult
    public mutating func remove(_ key: CacheKey) -> Bool {
        guard let slot = slotByKey[key] else { return false }
        remove(slot: slot)
        return true
    }

    /// Drops every entry of `namespace` (nil: every entry). Returns how many were dropped.
    @discardableResult
    public mutating func removeAll(namespace: String?) -> Int {
        guard let namespace else {
            let dropped = count
            self = SieveCache(capacityBytes: capacityBytes)
            return dropped
        }
        let slots = slotByKey.values.filter { nodes[Int($0)].namespace == namespace }
        for slot in slots { remove(slot: slot) }
        return slots.count
    }

    /// Drops every expired entry; returns how many.
    @discardableResult
    public mutating func removeExpired(now: UInt64) -> Int {
        let slots = slotByKey.values.filter { nodes[Int($0)].expiresAt <= now }
        for slot in slots { remove(slot: slot) }
        expirations += UInt64(slots.count)
        return slots.count
    }

    private mutating func evictOne(now: UInt64) {
        precondition(tail >= 0, "eviction from an empty cache")
        var cursor = hand >= 0 ? hand : tail
        while true {
            let index = Int(cursor)
            // An expired entry is the best victim there is.
            if !nodes[index].visited || nodes[index].expiresAt <= now { break }
            nodes[index].visited = false
            cursor = nodes[index].newer >= 0 ? nodes[index].newer : tail
        }
        hand = nodes[Int(cursor)].newer
        if nodes[Int(cursor)].expiresAt <= now { expirations += 1 } else { evictions += 1 }
        remove(slot: cursor)
    }

    private mutating func remove(slot: Int32) {
        let index = Int(slot)
        let node = nodes[index]
        if hand == slot { hand = node.newer }
        if node.newer >= 0 { nodes[Int(node.newer)].older = node.older } else { head = node.older }
        if node.older >= 0 { nodes[Int(node.older)].newer = node.newer } else { tail = node.newer }
        slotByKey.removeValue(forKey: node.key)
        usedBytes -= node.cost
        nodes[index].value = []
        nodes[index].namespace = ""
        freeSlots.append(slot)
    }
}
