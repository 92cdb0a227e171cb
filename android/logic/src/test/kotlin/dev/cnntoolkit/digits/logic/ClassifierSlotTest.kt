package dev.cnntoolkit.digits.logic

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread

class ClassifierSlotTest {
    private class Fake(val name: String) : AutoCloseable {
        val closes = AtomicInteger()
        override fun close() {
            closes.incrementAndGet()
        }
    }

    @Test
    fun emptySlotDropsTheCall() {
        val slot = ClassifierSlot<Fake>()
        assertNull(slot.tryUse { it.name })
        assertEquals(1L, slot.dropped)
        assertEquals(0L, slot.served)
    }

    @Test
    fun freeSlotRunsTheCall() {
        val slot = ClassifierSlot<Fake>()
        slot.replace(Fake("mnist"))
        assertEquals("mnist", slot.tryUse { it.name })
        assertEquals("mnist", slot.use { it.name })
        assertEquals(2L, slot.served)
        assertEquals(0L, slot.dropped)
    }

    @Test
    fun framesArrivingWhileBusyAreDroppedNotQueued() {
        val slot = ClassifierSlot<Fake>()
        slot.replace(Fake("mnist"))
        val inside = CountDownLatch(1)
        val release = CountDownLatch(1)
        val busy = thread {
            slot.tryUse {
                inside.countDown()
                release.await(5, TimeUnit.SECONDS)
            }
        }
        assertTrue(inside.await(5, TimeUnit.SECONDS))
        repeat(3) { assertNull(slot.tryUse { it.name }) }
        release.countDown()
        busy.join()
        assertEquals(3L, slot.dropped)
        assertEquals(1L, slot.served)
        assertEquals("mnist", slot.tryUse { it.name })
    }

    @Test
    fun replaceWaitsForTheCallInFlightThenClosesTheOldOnce() {
        val slot = ClassifierSlot<Fake>()
        val old = Fake("mnist")
        val new = Fake("fashion")
        slot.replace(old)
        val inside = CountDownLatch(1)
        val release = CountDownLatch(1)
        val closedDuringCall = AtomicInteger(-1)
        val busy = thread {
            slot.use {
                inside.countDown()
                release.await(5, TimeUnit.SECONDS)
                closedDuringCall.set(it.closes.get())
            }
        }
        assertTrue(inside.await(5, TimeUnit.SECONDS))
        val swapper = thread { slot.replace(new) }
        Thread.sleep(100)
        assertTrue("replace must wait for the call", swapper.isAlive)
        release.countDown()
        busy.join()
        swapper.join()
        assertEquals(0, closedDuringCall.get())
        assertEquals(1, old.closes.get())
        assertEquals("fashion", slot.tryUse { it.name })
        slot.clear()
        assertEquals(1, new.closes.get())
        assertFalse(slot.tryUse { true } ?: false)
    }
}
