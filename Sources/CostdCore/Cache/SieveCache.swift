/// A byte-bounded cache with per-entry expiry and SIEVE eviction.
///
/// SIEVE (Zhang et al., NSDI '24) keeps a FIFO queue and one "visited" bit per entry. A hit only
/// sets the bit, so reads never reorder anything; when space is needed, a hand walks from the
/// oldest entry towards the newest, clearing bits, and evicts the first entry it finds
/// unvisited. Entries that are read again survive, one-hit wonders leave first: hot entries
/// stay, as with LRU, but with less work per hit and better resistance to scans.
///
/// Memory is kept close to the payload: entries live in one array of 64-byte nodes (the key
/// only there), found through an open-addressing index of 4-byte slot numbers, and namespaces
/// are interned. Not thread-safe; ``L1Cache`` shards it behind locks.
public struct SieveCache: Sendable {
    /// Bookkeeping bytes charged per entry on top of the value and namespace bytes (the node,
    /// its index slot and allocator overhead), so the byte bound tracks real memory.
    public static let entryOverhead = 96

    struct Node: Sendable {
        var key: CacheKey
        var value: [UInt8]
        var expiresAt: UInt64
        /// What the stored answer cost, in nano-dollars (0: not given): saved by each hit.
        var answerCost: Int64
        var namespace: UInt32
        var newer: Int32  // towards the head (newest)
        var older: Int32  // towards the tail (oldest)
        var visited: Bool
        var live: Bool
    }

    public struct Entry: Sendable {
        public var value: [UInt8]
        public var expiresAt: UInt64
        /// What the stored answer cost (zero when not given): what a hit on it saves.
        public var answerCost: Money
    }

    public let capacityBytes: Int
    public private(set) var usedBytes = 0
    public private(set) var evictions: UInt64 = 0
    public private(set) var expirations: UInt64 = 0
    public private(set) var count = 0

    private var nodes: ContiguousArray<Node> = []
    private var freeSlots: [Int32] = []
    private var head: Int32 = -1  // newest
    private var tail: Int32 = -1  // oldest
    private var hand: Int32 = -1

    /// Open addressing with linear probing: node slots, or `empty`, or `deleted`.
    private var index: [Int32] = []
    private var indexUsed = 0  // live and deleted marks
    private static let empty: Int32 = -1
    private static let deleted: Int32 = -2

    private var namespaceIDs: [String: UInt32] = ["": 0]
    private var namespaceNames: [String] = [""]

    public init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    // MARK: - The index

    private func findSlot(_ key: CacheKey) -> (position: Int, slot: Int32)? {
        guard !index.isEmpty else { return nil }
        let mask = index.count - 1
        var position = Int(truncatingIfNeeded: key.words.0) & mask
        while true {
            let slot = index[position]
            if slot == SieveCache.empty { return nil }
            if slot >= 0 && nodes[Int(slot)].key == key { return (position, slot) }
            position = (position + 1) & mask
        }
    }

    /// Makes room in the index for one more entry. Call before the new node is live: a rebuild
    /// indexes every live node.
    private mutating func reserveIndexSlot() {
        if (indexUsed + 1) * 4 > index.count * 3 { rebuildIndex(minimumCount: count + 1) }
    }

    private mutating func insertIntoIndex(_ key: CacheKey, slot: Int32) {
        let mask = index.count - 1
        var position = Int(truncatingIfNeeded: key.words.0) & mask
        while index[position] >= 0 { position = (position + 1) & mask }
        if index[position] == SieveCache.empty { indexUsed += 1 }
        index[position] = slot
    }

    /// A fresh index for at least `minimumCount` entries, without deleted marks.
    private mutating func rebuildIndex(minimumCount: Int) {
        var capacity = 16
        while capacity * 3 < minimumCount * 4 + 4 { capacity <<= 1 }
        index = [Int32](repeating: SieveCache.empty, count: capacity)
        indexUsed = 0
        let mask = capacity - 1
        for slot in nodes.indices where nodes[slot].live {
            var position = Int(truncatingIfNeeded: nodes[slot].key.words.0) & mask
            while index[position] != SieveCache.empty { position = (position + 1) & mask }
            index[position] = Int32(slot)
            indexUsed += 1
        }
    }

    private func cost(of node: Node) -> Int {
        node.value.count + namespaceNames[Int(node.namespace)].utf8.count + SieveCache.entryOverhead
    }

    private mutating func namespaceID(_ namespace: String) -> UInt32 {
        if let id = namespaceIDs[namespace] { return id }
        let id = UInt32(namespaceNames.count)
        namespaceNames.append(namespace)
        namespaceIDs[namespace] = id
        return id
    }

    // MARK: - Operations

    /// The live entry for `key`, marking it visited; an expired entry is dropped and missed.
    public mutating func get(_ key: CacheKey, now: UInt64) -> Entry? {
        guard let (position, slot) = findSlot(key) else { return nil }
        let index = Int(slot)
        if nodes[index].expiresAt <= now {
            remove(slot: slot, position: position)
            expirations += 1
            return nil
        }
        nodes[index].visited = true
        return Entry(value: nodes[index].value, expiresAt: nodes[index].expiresAt, answerCost: Money(nanos: nodes[index].answerCost))
    }

    /// Stores `value` until `expiresAt`, evicting as needed. Returns false when the entry alone
    /// is larger than the whole cache (it is then not stored, and any older value is dropped).
    @discardableResult
    public mutating func set(
        _ key: CacheKey, value: [UInt8], namespace: String, expiresAt: UInt64, answerCost: Money = .zero, now: UInt64
    ) -> Bool {
        if let (position, slot) = findSlot(key) { remove(slot: slot, position: position) }
        let cost = value.count + namespace.utf8.count + SieveCache.entryOverhead
        guard cost <= capacityBytes else { return false }
        while usedBytes + cost > capacityBytes {
            evictOne(now: now)
        }
        reserveIndexSlot()
        let node = Node(
            key: key, value: value, expiresAt: expiresAt, answerCost: answerCost.nanos, namespace: namespaceID(namespace), newer: -1,
            older: head,
            visited: false, live: true
        )
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            nodes[Int(slot)] = node
        } else {
            slot = Int32(nodes.count)
            nodes.append(node)
        }
        // Insert at the head.
        if head >= 0 { nodes[Int(head)].newer = slot }
        head = slot
        if tail < 0 { tail = slot }
        insertIntoIndex(key, slot: slot)
        usedBytes += cost
        count += 1
        return true
    }

    @discardableResult
    public mutating func remove(_ key: CacheKey) -> Bool {
        guard let (position, slot) = findSlot(key) else { return false }
        remove(slot: slot, position: position)
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
        guard let id = namespaceIDs[namespace] else { return 0 }
        return removeAll { $0.namespace == id }
    }

    /// Drops every expired entry; returns how many.
    @discardableResult
    public mutating func removeExpired(now: UInt64) -> Int {
        let dropped = removeAll { $0.expiresAt <= now }
        expirations += UInt64(dropped)
        return dropped
    }

    private mutating func removeAll(where matches: (Node) -> Bool) -> Int {
        var dropped = 0
        for slot in nodes.indices where nodes[slot].live && matches(nodes[slot]) {
            if let (position, _) = findSlot(nodes[slot].key) {
                remove(slot: Int32(slot), position: position)
                dropped += 1
            }
        }
        return dropped
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
        if let (position, _) = findSlot(nodes[Int(cursor)].key) {
            remove(slot: cursor, position: position)
        }
    }

    private mutating func remove(slot: Int32, position: Int) {
        let index = Int(slot)
        let node = nodes[index]
        if hand == slot { hand = node.newer }
        if node.newer >= 0 { nodes[Int(node.newer)].older = node.older } else { head = node.older }
        if node.older >= 0 { nodes[Int(node.older)].newer = node.newer } else { tail = node.newer }
        self.index[position] = SieveCache.deleted
        usedBytes -= cost(of: node)
        count -= 1
        nodes[index].value = []
        nodes[index].live = false
        freeSlots.append(slot)
        // Deleted marks lengthen probes; past a quarter of the index, start it over.
        if indexUsed - count > self.index.count / 4 { rebuildIndex(minimumCount: count) }
    }
}
