//! The board's 240x320 ILI9341 panel, driven by the chip's LTDC (RGB interface): the ILI9341
//! only takes setup commands over SPI5 (its RGB interface mode, gamma, power); then the LTDC
//! streams the framebuffer in internal SRAM to it, 60 times a second, with no CPU work.
//!
//! Pins, timings and setup values are the board's (UM1670, the STM32F429I-DISC1 user manual,
//! and the ILI9341 datasheet): SPI5 SCK PF7 / MOSI PF9, chip select PC2, data/command PD13;
//! LTDC 18-bit RGB on ports A, B, C, D, F, G; HSYNC 10, HBP 20, HFP 10, VSYNC 2, VBP 2, VFP 4.

use embedded_graphics::pixelcolor::{IntoStorage, Rgb565};
use embedded_graphics::prelude::*;
use stm32f4xx_hal::gpio::{Output, Pin};
use stm32f4xx_hal::ltdc::{DisplayConfig, DisplayController, Layer, PixelFormat};
use stm32f4xx_hal::pac::SPI5;
use stm32f4xx_hal::spi::Spi;

use firmware_common::screen::{HEIGHT, WIDTH};

/// Panel pixels: 240 wide, 320 tall (portrait); the screen is drawn rotated onto it.
pub const PANEL_W: usize = 240;
pub const PANEL_H: usize = 320;
pub const PIXELS: usize = PANEL_W * PANEL_H;

/// The LTDC timings of the board's panel (its RGB interface at about 6 MHz).
pub const CONFIG: DisplayConfig = DisplayConfig {
    active_width: PANEL_W as u16,
    active_height: PANEL_H as u16,
    h_back_porch: 20,
    h_front_porch: 10,
    h_sync: 10,
    v_back_porch: 2,
    v_front_porch: 4,
    v_sync: 2,
    frame_rate: 60,
    h_sync_pol: false,
    v_sync_pol: false,
    no_data_enable_pol: false,
    // Syncs and data enable active low, pixel clock not inverted: what the ILI9341's RGB
    // interface setup below (0xB0) expects.
    pixel_clock_pol: false,
};

/// ILI9341 setup for the RGB interface, as (command, parameters): power and timing control,
/// memory access (BGR, row/column order), RGB interface signal control (DE mode, sync polarity
/// low, data on the rising clock edge), interface control (RGB interface, 18 bits), gamma.
const ILI9341_SETUP: &[(u8, &[u8])] = &[
    (0xCA, &[0xC3, 0x08, 0x50]),
    (0xCF, &[0x00, 0xC1, 0x30]),
    (0xED, &[0x64, 0x03, 0x12, 0x81]),
    (0xE8, &[0x85, 0x00, 0x78]),
    (0xCB, &[0x39, 0x2C, 0x00, 0x34, 0x02]),
    (0xF7, &[0x20]),
    (0xEA, &[0x00, 0x00]),
    (0xB1, &[0x00, 0x1B]),
    (0xB6, &[0x0A, 0xA2]),
    (0xC0, &[0x10]),
    (0xC1, &[0x10]),
    (0xC5, &[0x45, 0x15]),
    (0xC7, &[0x90]),
    (0x36, &[0xC8]),
    (0xF2, &[0x00]),
    (0xB0, &[0xC2]),
    (0xB6, &[0x0A, 0xA7, 0x27, 0x04]),
    (0x2A, &[0x00, 0x00, 0x00, 0xEF]),
    (0x2B, &[0x00, 0x00, 0x01, 0x3F]),
    (0xF6, &[0x01, 0x00, 0x06]),
    (0x2C, &[]),
    (0x26, &[0x01]),
    (0xE0, &[0x0F, 0x29, 0x24, 0x0C, 0x0E, 0x09, 0x4E, 0x78, 0x3C, 0x09, 0x13, 0x05, 0x17, 0x11, 0x00]),
    (0xE1, &[0x00, 0x16, 0x1B, 0x04, 0x11, 0x07, 0x31, 0x33, 0x42, 0x05, 0x0C, 0x0A, 0x28, 0x2F, 0x0F]),
];
const SLEEP_OUT: u8 = 0x11;
const DISPLAY_ON: u8 = 0x29;
const MEMORY_WRITE: u8 = 0x2C;

/// The ILI9341's SPI command port: SPI5 plus chip select and data/command lines.
pub struct Commands {
    pub spi: Spi<SPI5>,
    pub cs: Pin<'C', 2, Output>,
    pub dc: Pin<'D', 13, Output>,
    /// Core clock, for the waits.
    pub sysclk_hz: u32,
}

impl Commands {
    fn send(&mut self, command: u8, params: &[u8]) {
        self.cs.set_low();
        self.dc.set_low();
        self.byte(command);
        self.dc.set_high();
        for &p in params {
            self.byte(p);
        }
        self.cs.set_high();
    }

    fn byte(&mut self, b: u8) {
        // A refused byte leaves the panel unset: the screen stays dark, nothing else breaks.
        let _ = self.spi.write(&[b]);
        // The write returns when the byte is queued: let it leave before DC or CS change
        // (8 bits at the SPI's 5 MHz = 1.6 us).
        cortex_m::asm::delay(self.sysclk_hz / 500_000);
    }

    fn wait_ms(&self, ms: u32) {
        cortex_m::asm::delay(self.sysclk_hz / 1000 * ms);
    }

    /// Puts the ILI9341 in RGB interface mode and turns it on.
    pub fn setup(&mut self) {
        self.cs.set_high();
        for (i, &(command, params)) in ILI9341_SETUP.iter().enumerate() {
            self.send(command, params);
            if command == MEMORY_WRITE && i + 1 < ILI9341_SETUP.len() {
                self.wait_ms(200);
            }
        }
        self.send(SLEEP_OUT, &[]);
        self.wait_ms(200);
        self.send(DISPLAY_ON, &[]);
        self.send(MEMORY_WRITE, &[]);
    }
}

/// The LTDC layer seen as the 320x240 landscape screen: screen (x, y) is panel
/// (239 - y, x), so the board is read with its USB connector on the left.
pub struct Panel {
    pub ltdc: DisplayController<u16>,
}

impl Panel {
    /// Shows `framebuffer` (240x320 RGB565, internal SRAM) through layer 1.
    pub fn new(mut ltdc: DisplayController<u16>, framebuffer: &'static mut [u16; PIXELS]) -> Self {
        ltdc.config_layer(Layer::L1, framebuffer, PixelFormat::RGB565);
        ltdc.enable_layer(Layer::L1);
        ltdc.reload();
        Panel { ltdc }
    }
}

impl OriginDimensions for Panel {
    fn size(&self) -> Size {
        Size::new(WIDTH, HEIGHT)
    }
}

impl DrawTarget for Panel {
    type Color = Rgb565;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb565>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, colour) in pixels {
            if let (Ok(x @ 0..WIDTH), Ok(y @ 0..HEIGHT)) = (u32::try_from(p.x), u32::try_from(p.y)) {
                let (px, py) = (PANEL_W - 1 - y as usize, x as usize);
                self.ltdc.draw_pixel(Layer::L1, px, py, colour.into_storage());
            }
        }
        Ok(())
    }
}
