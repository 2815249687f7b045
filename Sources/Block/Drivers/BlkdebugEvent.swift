/// QEMU 7.2's BlkdebugEvent (qapi/block-core.json), by its QAPI name: the points in the block
/// layer where a driver tells the node below "this is happening now" (BLKDBG_EVENT(child, …)).
/// All names are accepted in rules, as QEMU accepts them; svmm raises these, at the places QEMU
/// raises them:
/// - `read_aio`: raw and qcow2 reading guest data from their file child (raw_co_preadv,
///   qcow2_co_preadv_task);
/// - `write_aio`: raw and qcow2 writing guest data to their file child (raw_co_pwritev,
///   qcow2_co_pwritev_task);
/// - `flush_to_os`, `flush_to_disk`: on a node's primary child when the node is flushed
///   (bdrv_co_flush); `flush_to_disk` only when the node was written since its last successful
///   flush, and for qcow2 after its cached metadata was written back, as in QEMU.
/// The qcow2 metadata events (l1_*, l2_*, refblock_*, cluster_alloc…) are never raised: svmm's
/// qcow2 writes its metadata at other points than QEMU's, so a rule on them would lie.
public enum BlkdebugEvent: String, CaseIterable, Sendable {
    case l1Update = "l1_update", l1GrowAllocTable = "l1_grow_alloc_table", l1GrowWriteTable = "l1_grow_write_table"
    case l1GrowActivateTable = "l1_grow_activate_table", l2Load = "l2_load", l2Update = "l2_update"
    case l2UpdateCompressed = "l2_update_compressed", l2AllocCowRead = "l2_alloc_cow_read", l2AllocWrite = "l2_alloc_write"
    case readAio = "read_aio", readBackingAio = "read_backing_aio", readCompressed = "read_compressed"
    case writeAio = "write_aio", writeCompressed = "write_compressed", vmstateLoad = "vmstate_load"
    case vmstateSave = "vmstate_save", cowRead = "cow_read", cowWrite = "cow_write", reftableLoad = "reftable_load"
    case reftableGrow = "reftable_grow", reftableUpdate = "reftable_update", refblockLoad = "refblock_load"
    case refblockUpdate = "refblock_update", refblockUpdatePart = "refblock_update_part", refblockAlloc = "refblock_alloc"
    case refblockAllocHookup = "refblock_alloc_hookup", refblockAllocWrite = "refblock_alloc_write"
    case refblockAllocWriteBlocks = "refblock_alloc_write_blocks", refblockAllocWriteTable = "refblock_alloc_write_table"
    case refblockAllocSwitchTable = "refblock_alloc_switch_table", clusterAlloc = "cluster_alloc"
    case clusterAllocBytes = "cluster_alloc_bytes", clusterFree = "cluster_free", flushToOS = "flush_to_os"
    case flushToDisk = "flush_to_disk", pwritevRmwHead = "pwritev_rmw_head", pwritevRmwAfterHead = "pwritev_rmw_after_head"
    case pwritevRmwTail = "pwritev_rmw_tail", pwritevRmwAfterTail = "pwritev_rmw_after_tail", pwritev = "pwritev"
    case pwritevZero = "pwritev_zero", pwritevDone = "pwritev_done", emptyImagePrepare = "empty_image_prepare"
    case l1ShrinkWriteTable = "l1_shrink_write_table", l1ShrinkFreeL2Clusters = "l1_shrink_free_l2_clusters"
    case corWrite = "cor_write", clusterAllocSpace = "cluster_alloc_space", none = "none"
}
