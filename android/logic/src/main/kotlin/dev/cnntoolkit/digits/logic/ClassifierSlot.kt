package dev.cnntoolkit.digits.logic

import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock

/**
 * Holds the current classifier (anything [AutoCloseable]) and lets the camera thread drop a frame
 * instead of waiting whenever the classifier is busy or being replaced.
 *
 * Closing a native classifier while a frame is still inside it would free memory under the
 * running call, so [replace] waits for the call in flight and closes the old one after it.
 */
class ClassifierSlot<T : AutoCloseable> {
    private val lock = ReentrantLock()
    private var current: T? = null
    private val servedCount = AtomicLong()
    private val droppedCount = AtomicLong()

    /** Calls that ran. */
    val served: Long get() = servedCount.get()

    /** Calls dropped because the slot was busy, being replaced, or empty. */
    val dropped: Long get() = droppedCount.get()

    /** Runs [block] with the classifier if it is free right now; otherwise drops the call (null). */
    fun <R> tryUse(block: (T) -> R): R? {
        if (!lock.tryLock()) {
            droppedCount.incrementAndGet()
            return null
        }
        try {
            val c = current
            if (c == null) {
                droppedCount.incrementAndGet()
                return null
            }
            servedCount.incrementAndGet()
            return block(c)
        } finally {
            lock.unlock()
        }
    }

    /** Runs [block] with the classifier, waiting for a call in flight; null when empty. */
    fun <R> use(block: (T) -> R): R? = lock.withLock {
        val c = current ?: return null
        servedCount.incrementAndGet()
        block(c)
    }

    /** Puts [next] in the slot once no call is in flight, and closes the previous classifier. */
    fun replace(next: T?) {
        val old = lock.withLock {
            val old = current
            current = next
            old
        }
        old?.close()
    }

    /** Empties the slot, closing its classifier. */
    fun clear() = replace(null)
}
