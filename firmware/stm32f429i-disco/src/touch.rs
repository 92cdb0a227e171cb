//! The board's resistive touch screen: an STMPE811 controller on I2C3 (SCL PA8, SDA PC9,
//! address 0x41), polled. Register values from the STMPE811 datasheet; the raw-to-panel mapping
//! is the board's calibration as ST's board support package applies it (untested here: no board).

use stm32f4xx_hal::i2c::I2c;
use stm32f4xx_hal::pac::I2C3;

const ADDRESS: u8 = 0x41;

const SYS_CTRL1: u8 = 0x03;
const SYS_CTRL2: u8 = 0x04;
const INT_STA: u8 = 0x0B;
const GPIO_AF: u8 = 0x17;
const ADC_CTRL1: u8 = 0x20;
const ADC_CTRL2: u8 = 0x21;
const TSC_CTRL: u8 = 0x40;
const TSC_CFG: u8 = 0x41;
const FIFO_TH: u8 = 0x4A;
const FIFO_STA: u8 = 0x4B;
const FIFO_SIZE: u8 = 0x4C;
const TSC_DATA_XYZ: u8 = 0xD7;
const TSC_FRACTION_Z: u8 = 0x56;
const TSC_I_DRIVE: u8 = 0x58;
/// TSC_CTRL's "touch detected" bit.
const TOUCH_DET: u8 = 0x80;

/// The I2C bus refused a transfer.
#[derive(Debug, Clone, Copy)]
pub struct BusError;

pub struct Touch {
    i2c: I2c<I2C3>,
}

impl Touch {
    /// Resets the controller and starts the touch-screen ADC (X, Y, Z; 4-sample average).
    pub fn new(i2c: I2c<I2C3>, sysclk_hz: u32) -> Result<Self, BusError> {
        let mut t = Touch { i2c };
        t.write(SYS_CTRL1, 0x02)?; // soft reset
        cortex_m::asm::delay(sysclk_hz / 100); // 10 ms
        t.write(SYS_CTRL2, 0x0C)?; // ADC and touch clocks on; GPIO and temperature off
        t.write(ADC_CTRL1, 0x49)?; // 80 clocks per sample, 12 bits
        cortex_m::asm::delay(sysclk_hz / 500); // 2 ms
        t.write(ADC_CTRL2, 0x01)?; // ADC clock 3.25 MHz
        t.write(GPIO_AF, 0x00)?; // the pins go to the touch screen
        t.write(TSC_CFG, 0x9A)?; // 4 samples, 500 us touch-detect delay, 500 us settling
        t.write(FIFO_TH, 0x01)?;
        t.write(FIFO_STA, 0x01)?; // clear the FIFO
        t.write(FIFO_STA, 0x00)?;
        t.write(TSC_FRACTION_Z, 0x01)?;
        t.write(TSC_I_DRIVE, 0x01)?; // 50 mA
        t.write(TSC_CTRL, 0x01)?; // enable, X Y Z
        t.write(INT_STA, 0xFF)?;
        Ok(t)
    }

    fn write(&mut self, reg: u8, value: u8) -> Result<(), BusError> {
        self.i2c.write(ADDRESS, &[reg, value]).map_err(|_| BusError)
    }

    fn read(&mut self, reg: u8, out: &mut [u8]) -> Result<(), BusError> {
        self.i2c.write_read(ADDRESS, &[reg], out).map_err(|_| BusError)
    }

    /// Where the panel is touched, in panel pixels (x 0..240, y 0..320), or `None`.
    pub fn point(&mut self) -> Result<Option<(usize, usize)>, BusError> {
        let mut ctrl = [0u8];
        self.read(TSC_CTRL, &mut ctrl)?;
        if ctrl[0] & TOUCH_DET == 0 {
            return Ok(None);
        }
        let mut size = [0u8];
        self.read(FIFO_SIZE, &mut size)?;
        if size[0] == 0 {
            return Ok(None);
        }
        let mut xyz = [0u8; 4];
        self.read(TSC_DATA_XYZ, &mut xyz)?;
        // Drop the rest of the FIFO: only the latest sample matters.
        self.write(FIFO_STA, 0x01)?;
        self.write(FIFO_STA, 0x00)?;
        let raw_x = (u32::from(xyz[0]) << 4) | (u32::from(xyz[1]) >> 4);
        let raw_y = ((u32::from(xyz[1]) & 0x0F) << 8) | u32::from(xyz[2]);
        // The board's calibration (raw 12-bit readings to pixels).
        let x = if raw_x <= 3000 { 3870u32.saturating_sub(raw_x) } else { 3800u32.saturating_sub(raw_x) } / 15;
        let y = raw_y.saturating_sub(360) / 11;
        Ok(Some(((x as usize).min(239), (y as usize).min(319))))
    }
}
